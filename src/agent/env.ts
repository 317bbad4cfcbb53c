// Reads the agent's environment (set by a provider) into `AgentOptions`, refusing anything incomplete.
import { AGENT_ENV, agentSettingsSchema } from '../protocol/agent.js';
import { AgentEnvError } from './errors.js';
import type { AgentOptions } from './options.js';
import { ownAddress } from './host.js';

/**
 * Builds agent options from `AGENT_ENV` variables; throws `AgentEnvError` listing every problem.
 *
 * @example
 * const options = readAgentEnv(process.env);
 * new Agent(options).start();
 */
export function readAgentEnv(env: NodeJS.ProcessEnv): AgentOptions {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name];
    if (value === undefined || value.trim() === '') problems.push(`${name} is not set`);
    return value ?? '';
  };
  const hubUrl = required(AGENT_ENV.hubUrl);
  const instanceId = required(AGENT_ENV.instanceId);
  const joinToken = required(AGENT_ENV.joinToken);
  const settingsText = required(AGENT_ENV.settings);
  if (hubUrl !== '') {
    try {
      const url = new URL(hubUrl);
      if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) problems.push(`${AGENT_ENV.hubUrl} must be an http(s) or ws(s) URL, not ${url.protocol}`);
    } catch {
      problems.push(`${AGENT_ENV.hubUrl} is not a URL: "${hubUrl}"`);
    }
  }
  let settings: unknown;
  if (settingsText !== '') {
    try {
      settings = JSON.parse(settingsText);
    } catch (error) {
      problems.push(`${AGENT_ENV.settings} is not JSON: ${(error as Error).message}`);
    }
  }
  const parsed = settings === undefined ? undefined : agentSettingsSchema.safeParse(settings);
  if (parsed && !parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${AGENT_ENV.settings}.${issue.path.join('.')}: ${issue.message}`);
  }
  if (problems.length > 0 || !parsed?.success) throw new AgentEnvError(problems);
  let { address } = parsed.data;
  // `auto` (a Slurm job, a joined host): the machine's own address, known only where the agent runs.
  if (address === 'auto') {
    const found = ownAddress();
    if (!found) throw new AgentEnvError([`${AGENT_ENV.settings}.address: "auto" but this machine has no non-loopback IPv4 address`]);
    address = found;
  }
  return { hubUrl, instanceId, joinToken, settings: { ...parsed.data, address } };
}
