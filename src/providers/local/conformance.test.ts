// The local provider against the shared provider conformance suite (real agent processes on this machine).
import { existsSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { FakeHub, testSettings, traversableTempDir } from '../../agent/testing.js';
import { createLogger } from '../../lib/log.js';
import { describeProviderConformance } from '../conformance.js';
import { LocalProvider } from './local-provider.js';

const AGENT_MAIN = fileURLToPath(new URL('../../../dist/agent/main.js', import.meta.url));
let root = '';
let hub: FakeHub;

beforeAll(async () => {
  root = traversableTempDir('dspool-local-conf-');
  hub = await FakeHub.start();
});
afterAll(async () => {
  await hub.stop();
  rmSync(root, { recursive: true, force: true });
});

if (!existsSync(AGENT_MAIN)) console.warn('local provider conformance: dist/ is not built; the agent cases fail (npm run build)');

describeProviderConformance('local', {
  make: () => new LocalProvider({ scratchDir: `${root}/instances`, agentEntry: AGENT_MAIN, log: createLogger('conformance', 'silent'), deleteGraceMs: 2000 }),
  spec: (id) => {
    const { address: _address, scratchDir: _scratch, ...settings } = testSettings(root);
    return { id, hubUrl: hub.url, joinToken: `join-${id}-0123456789`, settings };
  },
  awaitJoin: (id) => hub.awaitHandshake(id),
  timeoutMs: 60_000,
});
