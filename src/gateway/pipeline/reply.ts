// How the gateway answers when it does not forward: a redirect, or an error as JSON `{status, message}` (an HTML
// page for browsers), written on the response or, for an upgrade, raw on the socket.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { escapeHtml } from '../../lib/html.js';
import { POOL_CSS } from '../../lib/style.js';
import { GATEWAY_ERROR_STATUS } from '../errors.js';
import type { Exchange, Reply } from './exchange.js';

/**
 * The backend failed: 502 with the reason, or, when its answer had begun, the client is cut off.
 *
 * @example
 * backendFailed(ex, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
 * // 502: "alice's server did not answer (ECONNREFUSED)"
 */
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
 *
 * @example
 * respond(ex, { status: 302, code: 'redirect', message: 'See /hub/', location: '/hub/' });
 * respond(ex, { status: 404, code: 'not_found', message: 'nothing here: /x' }); // JSON, or an HTML page for a browser
 */
export function respond(ex: Exchange, reply: Reply): void {
  if (reply.status >= 500) ex.ctx.counters.errors++;
  const html = ex.accept.includes('text/html');
  const body = html ? htmlPage(ex, reply) : `${JSON.stringify({ status: reply.status, message: reply.message })}\n`;
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

/** Headings for the errors a browser may meet, in words a user reads (the message says the details). */
const HEADINGS: Partial<Record<Reply['code'], string>> = {
  forbidden: 'Not your server',
  origin_refused: 'Request from another site refused',
  server_not_running: 'Server not running',
  hub_unavailable: 'The pool is busy',
  backend_unreachable: 'The server did not answer',
  not_found: 'Not found',
  unauthenticated: 'Log in first',
};

/** An error page for browsers, with the pool's stylesheet inline (it must show even when the hub does not answer). */
function htmlPage(ex: Exchange, reply: Reply): string {
  const status = `${reply.status} ${STATUS_CODES[reply.status] ?? ''}`.trim();
  const heading = HEADINGS[reply.code] ?? status;
  const me = ex.identity?.user;
  const why = reply.code === 'forbidden' && me !== undefined
    ? `<p>You are logged in as <strong>${escapeHtml(me)}</strong>: only ${escapeHtml(ex.user)} (or an admin) may open ${escapeHtml(ex.user)}'s server.</p>`
    : '';
  const links = [
    reply.location === undefined ? '' : `<a class="btn primary" href="${escapeHtml(reply.location)}">Continue</a>`,
    me !== undefined && me !== ex.user ? `<a class="btn primary" href="/user/${escapeHtml(me)}/tree">Open my server</a>` : '',
    '<a class="btn" href="/hub/home">Home</a>',
    me !== undefined && reply.code === 'forbidden' ? '<a class="btn" href="/hub/logout">Log in as someone else</a>' : '',
  ].filter(Boolean).join(' ');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(heading)} · dspool</title><style>${POOL_CSS}</style></head><body>
<header class="bar"><div class="wrap"><a class="brand" href="/hub/home">ds<b>pool</b></a>${me === undefined ? '' : `<nav><span>${escapeHtml(me)}</span></nav>`}</div></header>
<main class="wrap"><h1>${escapeHtml(heading)}</h1>
<p class="alert alert-danger" role="alert">${escapeHtml(reply.message)} <span class="muted">(${escapeHtml(status)})</span></p>
${why}<p>${links}</p></main></body></html>
`;
}
