// JupyterHub compatibility: the overlapping routes answer JupyterHub's own client code (HubAuth from the Debian
// `jupyterhub` package) and return JupyterHub's models field for field.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPool, rand, run } from './harness.js';
import { jupyterHubProblems } from './jupyterhub-contract.js';

const PYTHON = '/usr/bin/python3';
const hasHubAuth = existsSync('/usr/lib/python3/dist-packages/jupyterhub/services/auth.py');

const HUB_AUTH_SCRIPT = `
import json, os, sys
from jupyterhub.services.auth import HubAuth
auth = HubAuth(api_token=os.environ["SERVICE_TOKEN"], api_url=os.environ["HUB_API"], cache_max_age=0)
print(json.dumps({"good": auth.user_for_token(os.environ["USER_TOKEN"], use_cache=False),
                  "bad": auth.user_for_token("not-a-token", use_cache=False)}))
`;

describe.skipIf(!existsSync('/usr/bin/jupyter-notebook'))('JupyterHub compatibility', () => {
  const pool = new TestPool({ instances: 1 });
  const alice = `j${rand()}`;
  let token = '';
  let adminToken = '';

  beforeAll(async () => {
    await pool.start();
    adminToken = await pool.addUser(`r${rand()}`, 'root-pass', true);
    token = await pool.addUser(alice, 'pw');
    await pool.startServer(alice, token);
  }, 180_000);
  afterAll(() => pool.cleanup(), 90_000);

  it.skipIf(!hasHubAuth)('resolves a token with JupyterHub\'s own HubAuth client, and reports a bad one as no user', async () => {
    const result = await run(PYTHON, ['-c', HUB_AUTH_SCRIPT], {
      env: { SERVICE_TOKEN: adminToken, USER_TOKEN: token, HUB_API: `${pool.url}/hub/api`, PYTHONPATH: '' },
    });
    expect(result.code, result.stderr).toBe(0);
    const { good, bad } = JSON.parse(result.stdout) as { good: { name: string; kind: string; scopes: string[] }; bad: unknown };
    expect(good.name).toBe(alice);
    expect(good.kind).toBe('user');
    expect(good.scopes).toContain(`access:servers!user=${alice}`);
    expect(bad).toBeNull();
  });

  it('returns JupyterHub\'s user, server and request-identity models', async () => {
    const me = (await (await pool.fetch('/hub/api/user', { token })).json()) as unknown;
    expect(jupyterHubProblems('User', me)).toEqual([]);
    expect(jupyterHubProblems('RequestIdentity', me)).toEqual([]);
    const user = (await (await pool.fetch(`/hub/api/users/${alice}`, { token })).json()) as { servers: Record<string, unknown> };
    expect(jupyterHubProblems('User', user)).toEqual([]);
    expect(Object.keys(user.servers)).toEqual(['']);
    const list = (await (await pool.fetch('/hub/api/users', { token: adminToken })).json()) as unknown[];
    for (const model of list) expect(jupyterHubProblems('User', model)).toEqual([]);
    expect(await (await pool.fetch('/hub/api/')).json()).toMatchObject({ version: expect.any(String) });
  });

  it('returns JupyterHub\'s token models, the secret only once', async () => {
    const created = await pool.fetch(`/hub/api/users/${alice}/tokens`, { method: 'POST', token, body: JSON.stringify({ note: 'compat', expires_in: 600 }) });
    expect(created.status).toBe(201);
    const model = (await created.json()) as { id: string };
    expect(jupyterHubProblems('NewToken', model)).toEqual([]);
    const listed = (await (await pool.fetch(`/hub/api/users/${alice}/tokens`, { token })).json()) as { api_tokens: Array<Record<string, unknown>> };
    const again = listed.api_tokens.find((t) => t.id === model.id);
    expect(again).toBeDefined();
    expect(again).not.toHaveProperty('token');
    expect(jupyterHubProblems('Token', again)).toEqual([]);
  });

  it('answers a missing or invalid credential with 403, as JupyterHub does', async () => {
    expect((await pool.fetch('/hub/api/user')).status).toBe(403);
    expect((await pool.fetch('/hub/api/user', { token: 'nope' })).status).toBe(403);
  });
});
