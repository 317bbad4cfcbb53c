// End to end: nothing a user saves where they save by default is lost when their instance vanishes. Alice makes a
// notebook on Jupyter's landing page, uploads a file there, scp's a file with no remote path and writes a file in
// her SSH shell's starting directory; her instance is killed (-9, its disk deleted by the repair); from her new
// server and her new SSH session all four files are there, byte for byte.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPool, rand, run } from './harness.js';

interface InstanceJson { id: string; state: string; provider: { pid: number } }
interface UserJson { servers: Record<string, { ready: boolean; instance: string | null }> }

const ready = existsSync('/usr/bin/jupyter-notebook') && existsSync('/usr/bin/ssh') && existsSync('/usr/bin/scp');

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sha = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

describe.skipIf(!ready)('nothing a user saves is lost when their instance vanishes', () => {
  const pool = new TestPool({ instances: 2, ssh: true, extraYaml: 'pool:\n  instances: 2\n  repair: { failAfter: 2s, missedHeartbeats: 3, maxShare: 0.5 }' });
  const alice = `l${rand()}`;
  const keys = mkdtempSync(join(tmpdir(), 'dspool-lost-'));
  const key = join(keys, 'id');
  let token = '';
  let adminToken = '';

  const sshArgs = (): string[] => [
    '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=60',
    '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key,
  ];
  const ssh = (command: string) => run('/usr/bin/ssh', [...sshArgs(), '-p', String(pool.sshPort), `${alice}@127.0.0.1`, command], { timeoutMs: 120_000 });
  const api = async <T>(path: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: T }> => {
    const response = await pool.fetch(path, { token, ...init, headers: { 'content-type': 'application/json', ...init.headers } });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  };

  beforeAll(async () => {
    const made = await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    if (made.code !== 0) throw new Error(made.stderr);
    await pool.start();
    adminToken = await pool.addUser(`r${rand()}`, 'admin-password-1', true);
    token = await pool.addUser(alice, 'alice-password-1');
    const added = await pool.cli(['users', 'keys', 'add', alice, `${key}.pub`]);
    if (added.code !== 0) throw new Error(added.stderr);
  }, 180_000);

  afterAll(async () => {
    await pool.cleanup();
    rmSync(keys, { recursive: true, force: true });
  }, 90_000);

  it('keeps a notebook made on the landing page, an upload, an scp without a path and a file from the SSH login dir', async () => {
    const first = await pool.startServer(alice, token);

    // Jupyter's landing page is $HOME: "New → Python 3" there makes Untitled.ipynb at the root of the contents API.
    const tree = await api<{ path: string; content: Array<{ name: string }> }>(`/user/${alice}/api/contents`);
    expect(tree.status).toBe(200);
    expect(tree.body.content.map((c) => c.name)).toContain('notebooks');
    const created = await api<{ path: string }>(`/user/${alice}/api/contents`, { method: 'POST', body: JSON.stringify({ type: 'notebook' }) });
    expect(created.status).toBe(201);
    const notebookPath = created.body.path;
    expect(notebookPath).not.toContain('/');
    const cells = [{ cell_type: 'code', source: 'print("kept")', metadata: {}, outputs: [], execution_count: null }];
    const saved = await api(`/user/${alice}/api/contents/${notebookPath}`, {
      method: 'PUT',
      body: JSON.stringify({ type: 'notebook', content: { cells, metadata: {}, nbformat: 4, nbformat_minor: 5 } }),
    });
    expect(saved.status).toBe(200);

    // "Upload" on the landing page.
    const uploadBytes = randomBytes(4096);
    const uploaded = await api(`/user/${alice}/api/contents/upload.bin`, {
      method: 'PUT',
      body: JSON.stringify({ type: 'file', format: 'base64', content: uploadBytes.toString('base64') }),
    });
    expect(uploaded.status).toBe(201);

    // scp with no remote path, and a file written in the SSH shell's starting directory.
    const local = join(keys, 'scp.bin');
    const scpBytes = randomBytes(100_000);
    writeFileSync(local, scpBytes);
    const scp = await run('/usr/bin/scp', [...sshArgs(), '-P', String(pool.sshPort), local, `${alice}@127.0.0.1:`], { timeoutMs: 120_000 });
    expect(scp.code, scp.stderr).toBe(0);
    const here = await ssh('echo x > here.txt && pwd');
    expect(here.code, here.stderr).toBe(0);
    expect(here.stdout.trim()).toBe(join(pool.share, 'users', alice, 'home'));

    // Lose the instance: kill -9 its agent and everything in its process group; the repair deletes its disk.
    const victim = (await api<InstanceJson[]>('/hub/api/instances', { token: adminToken })).body.find((i) => i.id === first.instance);
    expect(victim).toBeDefined();
    process.kill(-(victim?.provider.pid ?? 0), 'SIGKILL');
    await waitFor(
      'the lost instance to be replaced',
      async () => {
        const list = (await api<InstanceJson[]>('/hub/api/instances', { token: adminToken })).body;
        return !list.some((i) => i.id === first.instance) && list.filter((i) => i.state === 'ready').length === 2 ? true : undefined;
      },
      120_000,
    );

    // Her next request gets a new server elsewhere; all four files are there, byte for byte.
    await waitFor('her server to be gone', async () => ((await api<UserJson>(`/hub/api/users/${alice}`)).body.servers[''] ? undefined : true), 60_000);
    const second = await pool.startServer(alice, token, 120_000);
    expect(second.instance).not.toBe(first.instance);
    const notebook = await api<{ content: { cells: Array<{ source: string }> } }>(`/user/${alice}/api/contents/${notebookPath}`);
    expect(notebook.status).toBe(200);
    expect(notebook.body.content.cells[0]?.source).toBe('print("kept")');
    const upload = await api<{ content: string }>(`/user/${alice}/api/contents/upload.bin?format=base64&type=file`);
    expect(upload.status).toBe(200);
    expect(sha(Buffer.from(upload.body.content, 'base64'))).toBe(sha(uploadBytes));

    const check = await ssh(`sha256sum scp.bin upload.bin | cut -d' ' -f1; cat here.txt; ls`);
    expect(check.code, check.stderr).toBe(0);
    const [scpSum, uploadSum, hereText] = check.stdout.trim().split('\n');
    expect(scpSum).toBe(sha(scpBytes));
    expect(uploadSum).toBe(sha(uploadBytes));
    expect(hereText).toBe('x');
    expect(check.stdout).toContain(notebookPath);
  }, 420_000);
});
