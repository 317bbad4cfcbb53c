// Reads and validates a JSON request body at the boundary; errors name the field at fault.
import type { Context } from 'hono';
import type { z } from 'zod';
import { BadRequestError } from '../errors.js';

/**
 * Parses the JSON body (an empty body counts as `{}`) with a strict zod schema.
 *
 * @example
 * const body = await readJson(c, z.strictObject({ admin: z.boolean().optional() }));
 */
export async function readJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new BadRequestError('the request body is not valid JSON');
    }
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new BadRequestError('invalid request body');
  if (issue.code === 'unrecognized_keys') {
    throw new BadRequestError(`unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`, issue.keys[0]);
  }
  const field = issue.path.join('.');
  throw new BadRequestError(field ? `${field}: ${issue.message}` : issue.message, field || undefined);
}
