// A minimal Jupyter kernel client over the server's REST API and kernel WebSocket (Jupyter message protocol).
// Used by tests to run real cells and measure execute round trips.
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

/** Output of one executed cell. */
export interface ExecuteResult {
  /** `stream` text (stdout and stderr) followed by the `text/plain` of an `execute_result`. */
  readonly text: string;
  /** `ok` or `error`, from `execute_reply`. */
  readonly status: string;
  /** Milliseconds from sending `execute_request` to the kernel's `idle` status and `execute_reply`. */
  readonly rttMs: number;
}

interface JupyterMessage {
  header: { msg_id: string; msg_type: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  channel: string;
}

/**
 * A kernel started on a Jupyter server, driven over its WebSocket.
 *
 * @internal for tests and diagnostics
 * @example
 * const kernel = await KernelClient.start('http://127.0.0.1:40123', '/user/alice/', token);
 * const { text } = await kernel.execute('print(1 + 1)'); // '2\n'
 * await kernel.close();
 */
export class KernelClient {
  private readonly session = randomUUID();
  private readonly waiters = new Map<string, (message: JupyterMessage) => void>();

  private constructor(
    private readonly serverUrl: string,
    private readonly baseUrl: string,
    private readonly token: string,
    readonly kernelId: string,
    private readonly socket: WebSocket,
  ) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as JupyterMessage;
      const parent = message.parent_header.msg_id;
      if (parent) this.waiters.get(parent)?.(message);
    });
  }

  /** Starts a kernel through `POST api/kernels` and connects to its channels; waits until it answers. */
  static async start(serverUrl: string, baseUrl: string, token: string): Promise<KernelClient> {
    const headers = { Authorization: `token ${token}` };
    const response = await fetch(`${serverUrl}${baseUrl}api/kernels`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: '{}' });
    if (!response.ok) throw new Error(`POST api/kernels: ${response.status} ${await response.text()}`);
    const { id } = (await response.json()) as { id: string };
    const wsUrl = `${serverUrl.replace(/^http/, 'ws')}${baseUrl}api/kernels/${id}/channels`;
    const socket = new WebSocket(wsUrl, { headers });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const client = new KernelClient(serverUrl, baseUrl, token, id, socket);
    await client.waitReady();
    return client;
  }

  private async waitReady(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const reply = await Promise.race([
        this.request('kernel_info_request', {}, 'shell', (m) => m.header.msg_type === 'kernel_info_reply'),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 500)),
      ]);
      if (reply) return;
    }
    throw new Error('kernel did not answer kernel_info_request');
  }

  private request(
    msgType: string,
    content: Record<string, unknown>,
    channel: string,
    isDone: (message: JupyterMessage, seen: JupyterMessage[]) => boolean,
  ): Promise<JupyterMessage[]> {
    const msgId = randomUUID();
    const seen: JupyterMessage[] = [];
    const done = new Promise<JupyterMessage[]>((resolve) => {
      this.waiters.set(msgId, (message) => {
        seen.push(message);
        if (isDone(message, seen)) {
          this.waiters.delete(msgId);
          resolve(seen);
        }
      });
    });
    this.socket.send(
      JSON.stringify({
        header: { msg_id: msgId, msg_type: msgType, username: 'dspool', session: this.session, date: new Date().toISOString(), version: '5.3' },
        parent_header: {},
        metadata: {},
        content,
        channel,
        buffers: [],
      }),
    );
    return done;
  }

  /** Runs `code` and resolves with its output once the kernel is idle again and has replied. */
  async execute(code: string): Promise<ExecuteResult> {
    const started = performance.now();
    const isIdle = (m: JupyterMessage): boolean => m.header.msg_type === 'status' && m.content.execution_state === 'idle';
    const isReply = (m: JupyterMessage): boolean => m.header.msg_type === 'execute_reply';
    const messages = await this.request(
      'execute_request',
      { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      'shell',
      (_m, seen) => seen.some(isIdle) && seen.some(isReply),
    );
    const rttMs = performance.now() - started;
    let text = '';
    let status = 'ok';
    for (const m of messages) {
      if (m.header.msg_type === 'stream') text += String(m.content.text ?? '');
      if (m.header.msg_type === 'execute_result') text += String((m.content.data as Record<string, unknown>)['text/plain'] ?? '');
      if (m.header.msg_type === 'error') text += `${String(m.content.ename)}: ${String(m.content.evalue)}`;
      if (isReply(m)) status = String(m.content.status);
    }
    return { text, status, rttMs };
  }

  /** Closes the WebSocket and shuts the kernel down. */
  async close(): Promise<void> {
    this.socket.close();
    await fetch(`${this.serverUrl}${this.baseUrl}api/kernels/${this.kernelId}`, {
      method: 'DELETE',
      headers: { Authorization: `token ${this.token}` },
    }).catch(() => undefined);
  }
}
