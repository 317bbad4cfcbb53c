// How the gateway answers when it does not forward: a redirect, or an error as JSON `{status, message}` (an HTML
// page for browsers), written on the response or, for an upgrade, raw on the socket.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { escapeHtml } from '../../lib/html.js';
import { GATEWAY_ERROR_STATUS } from '../errors.js';
import type { Exchange, Reply } from './exchange.js';

/** The backend failed: 502 with the reason, or, when its answer had begun, the client is cut off. */
export function backendFailed(ex: Exchange, error: NodeJS.ErrnoException, answered = false): void {
  const reason = error.code ?? error.message;
  if (ex.gone) return;
  if (ex.res !== undefined && (answered || ex.res.headersSent)) {
    // The backend died mid-response: cut the client off too, so it does not take a short body for a whole one.
    ex.ctx.counters.errors++;
    ex.res.destroy();
    return;
  }
  ex.ctx.log.debug({ user: ex.user, reason }, 'backend unreachable');
  const who = ex.user === '' ? 'the hub' : `${ex.user}'s server`;
  respond(ex, { status: GATEWAY_ERROR_STATUS.backend_unreachable, code: 'backend_unreachable', message: `${who} did not answer (${reason})` });
}

/**
 * Sends a reply: a redirect, or an error as JSON `{ status, message }` (HTML page for browsers). On an upgrade
 * socket it is written as a raw HTTP response and the socket is closed.
 */
export function respond(ex: Exchange, reply: Reply): void {
  if (reply.status >= 500) ex.ctx.counters.errors++;
  const html = ex.accept.includes('text/html');
  const body = html ? htmlPage(reply) : `${JSON.stringify({ status: reply.status, message: reply.message })}\n`;
  const type = html ? 'text/html; charset=utf-8' : 'application/json';
  if (ex.res !== undefined) {
    const headers: string[] = ['Content-Type', type, 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store'];
    if (reply.location !== undefined) headers.push('Location', reply.location);
    if (reply.setCookie !== undefined) headers.push('Set-Cookie', reply.setCookie);
    ex.res.writeHead(reply.status, headers);
    ex.res.end(ex.req.method === 'HEAD' ? undefined : body);
    return;
  }
  const socket = ex.socket as Duplex;
  if (socket.destroyed) return;
  const location = reply.location === undefined ? '' : `Location: ${reply.location}\r\n`;
  socket.end(
    `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}\r\nContent-Type: ${type}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${location}Connection: close\r\n\r\n${body}`,
  );
}

function htmlPage(reply: Reply): string {
  const title = `${reply.status} ${STATUS_CODES[reply.status] ?? ''}`;
  const link = reply.location === undefined ? '' : `<p><a href="${escapeHtml(reply.location)}">Continue</a></p>`;
  return `<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1><p>${escapeHtml(reply.message)}</p>${link}\n`;
}
