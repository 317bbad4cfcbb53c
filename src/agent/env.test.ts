import { describe, expect, it } from 'vitest';
import { AGENT_ENV, type AgentSettings } from '../protocol/agent.js';
import { readAgentEnv } from './env.js';
import { AgentEnvError } from './errors.js';

const settings: AgentSettings = {
  address: '127.0.0.1',
  scratchDir: '/scratch',
  sharePath: '/share',
  jupyter: { command: ['/usr/bin/jupyter-notebook'], args: [], startTimeoutMs: 60_000, path: '/usr/bin:/bin' },
  logLevel: 'info',
  ssh: null,
};

describe('readAgentEnv', () => {
  it('reads hub, instance, token and validated settings', () => {
    const options = readAgentEnv({
      [AGENT_ENV.hubUrl]: 'http://127.0.0.1:8081',
      [AGENT_ENV.instanceId]: 'i-1',
      [AGENT_ENV.joinToken]: 'secret',
      [AGENT_ENV.settings]: JSON.stringify(settings),
    });
    expect(options).toEqual({ hubUrl: 'http://127.0.0.1:8081', instanceId: 'i-1', joinToken: 'secret', settings });
  });

  it('lists every problem at once and never echoes the token', () => {
    let error: unknown;
    try {
      readAgentEnv({ [AGENT_ENV.hubUrl]: 'ftp://x', [AGENT_ENV.joinToken]: 'secret-value', [AGENT_ENV.settings]: '{"address": 1}' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AgentEnvError);
    const problems = (error as AgentEnvError).problems;
    expect(problems).toContain('DSPOOL_INSTANCE_ID is not set');
    expect(problems.some((p) => p.startsWith('DSPOOL_HUB_URL must be'))).toBe(true);
    expect(problems.some((p) => p.startsWith('DSPOOL_AGENT_SETTINGS.address'))).toBe(true);
    expect((error as Error).message).not.toContain('secret-value');
  });

  it('refuses settings that are not JSON', () => {
    expect(() =>
      readAgentEnv({ [AGENT_ENV.hubUrl]: 'http://h', [AGENT_ENV.instanceId]: 'i', [AGENT_ENV.joinToken]: 't', [AGENT_ENV.settings]: '{' }),
    ).toThrow(/DSPOOL_AGENT_SETTINGS is not JSON/);
  });
});
