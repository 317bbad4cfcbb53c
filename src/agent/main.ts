#!/usr/bin/env node
// The agent's executable: `node dist/agent/main.js`, started by a provider with `AGENT_ENV` set.
// Bad environment → one line on stderr and exit 2; SIGTERM/SIGINT → stop every server and exit 0.
import { Agent } from './agent.js';
import { readAgentEnv } from './env.js';
import { AgentEnvError } from './errors.js';
import type { AgentOptions } from './options.js';

let options: AgentOptions;
try {
  options = readAgentEnv(process.env);
} catch (error) {
  process.stderr.write(`dspool agent: ${error instanceof AgentEnvError ? error.message : String(error)}\n`);
  process.exit(2);
}

const agent = new Agent(options);
agent.start();

let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) return;
    signalled = true;
    void agent.close();
  });
}

agent.done.then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`dspool agent: ${String(error)}\n`);
    process.exit(1);
  },
);
