// Step 7 of the pipeline: sends a plain request upstream through undici and streams the answer back, or, for a
// WebSocket upgrade, asks the backend to upgrade and then pipes the two sockets.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { relayConnect } from '../relay.js';
import type { Dispatcher } from 'undici';
import { downstreamHeaders, type Backend } from '../upstream.js';
import type { Exchange } from './exchange.js';
import { backendFailed, respond } from './reply.js';

/**
 * Step 7: sends the request upstream and streams the answer back (or, for an upgrade, pipes the sockets).
 *
 * @example
 * forward(ex, route, upstreamHeaders(ex, route.authorization), 0); // to the user's server
 * forward(ex, ex.ctx.hub, upstreamHeaders(ex, undefined), 0); // to the hub
 */
export function forward(ex: Exchange, backend: Backend, headers: string[], attempt: number): void {
  if (ex.upgrade) return forwardUpgrade(ex, backend, headers);
  const req = ex.req;
  const res = ex.res as ServerResponse;
  const withBody = hasBody(req);
  let controller: Dispatcher.DispatchController | undefined;
  let answered = false;
  // The client went away before the answer was complete: stop the backend request too.
  const onClose = (): void => {
    if (!res.writableFinished) controller?.abort(new Error('client closed the connection'));
  };
  res.on('close', onClose);
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (res.destroyed) c.abort(new Error('client closed the connection'));
    },
    onResponseStart(_c, status, answerHeaders, statusMessage) {
      if (status < 200) return;
      answered = true;
      res.writeHead(status, statusMessage, downstreamHeaders(answerHeaders));
    },
    onResponseData(c, chunk) {
      if (!res.write(chunk)) {
        c.pause();
        res.once('drain', () => c.resume());
      }
    },
    onResponseEnd() {
      res.off('close', onClose);
      res.end();
    },
    onResponseError(_c, error) {
      res.off('close', onClose);
      if (res.destroyed && !res.writableFinished) return;
      // A kept-alive connection the backend had just closed: retry a safe request once when nothing came back.
      if (attempt === 0 && !answered && !withBody && SAFE_METHODS.has(req.method ?? '') && isStaleConnection(error)) {
        forward(ex, backend, headers, 1);
        return;
      }
      backendFailed(ex, error as NodeJS.ErrnoException, answered);
    },
  };
  try {
    (backend.relay ? ex.ctx.relayDispatcher(ex.user, backend.relay) : ex.ctx.upstream).dispatch(
      { origin: backend.origin, path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: withBody ? req : null },
      handler,
    );
  } catch (error) {
    // undici refuses some requests up front (a header it does not allow); that is the client's request at fault.
    res.off('close', onClose);
    respond(ex, { status: 400, code: 'bad_request', message: `cannot forward this request: ${(error as Error).message}` });
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function isStaleConnection(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE';
}

function forwardUpgrade(ex: Exchange, backend: Backend, headers: string[]): void {
  const req = ex.req;
  const socket = ex.socket as Duplex;
  const head = ex.head;
  if (head !== undefined && head.length > 0) socket.unshift(head);
  const relay = backend.relay;
  const upstream = (backend.secure && relay === undefined ? https : http).request({
    host: backend.hostname,
    port: backend.port,
    method: req.method,
    path: req.url,
    headers,
    // Behind a relay: its pinned TLS connection (the preamble already sent) carries the upgrade.
    ...(relay === undefined
      ? { agent: false }
      : { createConnection: ((_options: unknown, callback: (error: Error | null, socket?: Socket) => void) => relayConnect(relay, callback)) as unknown as http.RequestOptions['createConnection'] }),
  });
  const abort = (): void => {
    upstream.destroy();
  };
  socket.once('close', abort);
  upstream.on('upgrade', (answer, backendSocket, backendHead) => {
    socket.off('close', abort);
    backendSocket.setNoDelay(true);
    if (socket.destroyed) {
      backendSocket.destroy();
      return;
    }
    backendSocket.on('error', ignoreError);
    const lines = [`HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}`];
    const raw = answer.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (backendHead.length > 0) socket.write(backendHead);
    const closeBoth = (): void => {
      socket.destroy();
      backendSocket.destroy();
    };
    socket.once('close', closeBoth);
    backendSocket.once('close', closeBoth);
    socket.once('end', () => backendSocket.end());
    backendSocket.once('end', () => socket.end());
    backendSocket.pipe(socket);
    socket.pipe(backendSocket);
    ex.ctx.trackUpgrade(socket, backendSocket, ex.identity && ex.user ? { kind: ex.credentialKind, credential: ex.credential, identity: ex.identity, server: ex.user } : undefined);
  });
  upstream.on('response', (answer) => {
    // The backend answered without upgrading (e.g. 403 from Jupyter): pass its answer on and close.
    socket.off('close', abort);
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
    for (const [name, value] of Object.entries(downstreamHeaders(answer.headers))) {
      for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
    }
    lines.push('Connection: close');
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    answer.on('error', () => socket.destroy());
    answer.pipe(socket);
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    socket.off('close', abort);
    backendFailed(ex, error);
  });
  upstream.end();
}

function hasBody(req: IncomingMessage): boolean {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return raw[i + 1] !== '0';
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return true;
  }
  return false;
}

/**
 * For sockets whose errors show up as their `close`.
 *
 * @example
 * socket.on('error', ignoreError); // the `close` that follows is handled instead
 */
export function ignoreError(): void {}
