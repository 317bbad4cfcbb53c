// Checks a response body against JupyterHub's recorded REST models (test/fixtures/jupyterhub-models.json):
// every field JupyterHub 4.x documents must be present with JupyterHub's type; extra pool fields are allowed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface FieldSpec {
  type: string | string[];
  enum?: string[];
  format?: string;
  items?: string;
  additionalProperties?: string;
}
interface Contract {
  nullInPractice: string[];
  schemas: Record<string, Record<string, FieldSpec>>;
}

const contract = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'jupyterhub-models.json'), 'utf8')) as Contract;

/**
 * Lists how `value` departs from JupyterHub's model `name` (empty when it conforms).
 *
 * @example
 * expect(jupyterHubProblems('User', await response.json())).toEqual([]);
 */
export function jupyterHubProblems(name: string, value: unknown, where = name): string[] {
  const schema = contract.schemas[name];
  if (!schema) return [`no recorded JupyterHub model "${name}"`];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${where}: not an object`];
  const record = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const [field, spec] of Object.entries(schema)) {
    const at = `${where}.${field}`;
    if (!(field in record)) {
      problems.push(`${at}: missing`);
      continue;
    }
    const v = record[field];
    const types = Array.isArray(spec.type) ? spec.type : [spec.type];
    if (v === null) {
      if (!types.includes('null') && !contract.nullInPractice.includes(field)) problems.push(`${at}: null is not allowed`);
      continue;
    }
    const actual = Array.isArray(v) ? 'array' : typeof v === 'number' ? 'number' : typeof v;
    if (!types.includes(actual)) {
      problems.push(`${at}: expected ${types.join(' | ')}, got ${actual}`);
      continue;
    }
    if (spec.enum && !spec.enum.includes(String(v))) problems.push(`${at}: ${JSON.stringify(v)} is not one of ${spec.enum.join(', ')}`);
    if (spec.format === 'date-time' && Number.isNaN(Date.parse(String(v)))) problems.push(`${at}: not a date-time`);
    if (spec.items && Array.isArray(v) && v.some((item) => typeof item !== spec.items)) problems.push(`${at}: items must be ${spec.items}`);
    if (spec.additionalProperties) {
      for (const [key, inner] of Object.entries(v as Record<string, unknown>)) {
        problems.push(...jupyterHubProblems(spec.additionalProperties, inner, `${at}[${JSON.stringify(key)}]`));
      }
    }
  }
  return problems;
}
