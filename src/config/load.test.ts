import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { configJsonSchema, parseConfig } from './load.js';

const minimal = `
dataDir: ./state
share: { path: ./share }
gateway: { host: 127.0.0.1, port: 8000 }
provider: { type: local }
pool: { instances: 2 }
`;

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, '/etc/dspool/pool.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the config to be refused');
}

describe('parseConfig', () => {
  it('fills every default and resolves paths against the file', () => {
    const config = parseConfig(minimal, '/etc/dspool/pool.yaml');
    expect(config.dataDir).toBe('/etc/dspool/state');
    expect(config.share.path).toBe('/etc/dspool/share');
    expect(config.pool.instances).toBe(2);
    expect(config.hub.port).toBe(8081);
    expect(config.hub.heartbeatInterval).toBe(5000);
    expect(config.gateway.sshPort).toBe(2222);
    expect(config.jupyter.command).toEqual(['/usr/bin/jupyter-notebook']);
    expect(config.jupyter.startTimeout).toBe(60_000);
  });

  it('names a mistyped key and suggests the right one', () => {
    const problems = problemsOf(`share: { path: /s }\ngateway: { prot: 8000 }\n`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^gateway\.prot: unknown key \(did you mean "port"\?\)/);
  });

  it('names an unknown top-level key', () => {
    expect(problemsOf(`share: { path: /s }\nautoscale: {}\n`)[0]).toMatch(/^autoscale: unknown key/);
  });

  it('names the bad value and shows what was given', () => {
    const problems = problemsOf(`share: { path: /s }\npool: { instances: "two" }\nhub: { cookieMaxAge: soon }\n`);
    expect(problems.join('\n')).toMatch(/pool\.instances: .*got "two"/);
    expect(problems.join('\n')).toMatch(/hub\.cookieMaxAge: "soon" is not a duration/);
  });

  it('says when a required key is missing', () => {
    expect(problemsOf(`pool: { instances: 1 }\n`)[0]).toMatch(/^share: is required/);
  });

  it('refuses an unknown provider type', () => {
    expect(problemsOf(`share: { path: /s }\nprovider: { type: nomad }\n`)[0]).toMatch(/^provider\.type/);
  });

  it('takes instances on other machines with TLS on hub.agentAddress, or plain on a network the operator calls private', () => {
    const pool = 'share: { path: /srv/share }\nprovider: { type: static, hosts: [198.18.0.2] }\n';
    expect(parseConfig(`${pool}hub: { agentAddress: "198.18.0.1:8082" }`, '/etc/dspool/pool.yaml').hub.privateNetwork).toBe(false);
    expect(parseConfig(`${pool}hub: { privateNetwork: true }`, '/etc/dspool/pool.yaml').hub.agentAddress).toBeNull();
    expect(problemsOf(pool)).toEqual([expect.stringMatching(/^hub\.agentAddress: instances on other machines \(provider static\) dial the hub over the network: set hub\.agentAddress .*TLS.* or hub\.privateNetwork: true/)]);
    expect(problemsOf('share: { path: /srv/share }\nprovider: { type: slurm }\n')).toEqual([expect.stringMatching(/^hub\.agentAddress: .*provider slurm/)]);
  });

  it('refuses YAML that does not parse, with its line', () => {
    expect(problemsOf(`share: { path: /s\npool: [\n`)[0]).toMatch(/not valid YAML/);
  });

  it('publishes a JSON Schema generated from the same definition', () => {
    const schema = configJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }> };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['dataDir', 'share', 'gateway', 'hub', 'provider', 'pool', 'jupyter']),
    );
    expect(schema.properties.gateway?.properties).toHaveProperty('port');
  });
});
