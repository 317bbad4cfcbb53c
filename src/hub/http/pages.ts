// The plain web pages: login, home (my server: start/stop, status) and the progress page shown while a
// server starts. No external assets; a page works without JavaScript except for live progress.
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { LOGIN_COOKIE } from '../../protocol/gateway.js';
import { usernameProblem } from '../../lib/names.js';
import { HubError } from '../errors.js';
import { userPrefix } from '../sessions/manager.js';
import { registerSshKey } from '../auth/ssh-keys.js';
import type { HubEnv, HubServices } from './services.js';
import { escapeHtml as esc } from '../../lib/html.js';
import { POOL_CSS, STYLESHEET_PATH } from '../../lib/style.js';

function page(title: string, body: string, who?: string): string {
  const nav = who
    ? `<nav><span>${esc(who)}</span><a href="/hub/home">Home</a><a href="/hub/logout">Log out</a></nav>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · dspool</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head><body>
<header class="bar"><div class="wrap"><a class="brand" href="/hub/home">ds<b>pool</b></a>${nav}</div></header>
<main class="wrap">
${body}
</main>
</body></html>`;
}

/** The home page's SSH section: the user's keys, a form to add one, and how to connect. */
async function keysSection(s: HubServices, user: string): Promise<string> {
  const keys = await s.store.listSshKeys(user);
  const list = keys.length === 0
    ? '<p class="muted">No keys yet: you can also log in over SSH with your password.</p>'
    : `<ul class="keys">${keys
      .map((k) => `<li><code>${esc(k.algo)} ${esc(k.fingerprint)}</code> <span>${esc(k.comment)}</span> <form method="post" action="/hub/home/keys"><button name="remove" value="${esc(k.id)}">Remove</button></form></li>`)
      .join('')}</ul>`;
  return `<h2 id="ssh">SSH</h2>
<p>Terminals, scp/sftp and VS Code Remote-SSH reach your server's instance through the pool's SSH port
(<code>dspool ssh-config --install</code> sets up <code>~/.ssh/config</code> and <code>known_hosts</code> for <code>ssh dspool</code>).</p>
${list}
<form class="stack" method="post" action="/hub/home/keys">
  <label>Add a public key <textarea name="key" rows="3" placeholder="ssh-ed25519 AAAA… you@laptop" required></textarea></label>
  <button type="submit" class="primary">Add key</button>
</form>`;
}

/** Where a login with no `next` goes: the user's server, started if need be (as JupyterHub does). */
const SPAWN_PATH = '/hub/spawn';

/** Only local paths are accepted as `next`, so the login page cannot be used to send users elsewhere. */
function safeNext(next: string | undefined): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.includes('\\') ? next : SPAWN_PATH;
}

function loginPage(next: string, error?: string, username = ''): string {
  return page(
    'Log in',
    `<div class="panel narrow"><h1>Log in</h1>
<form class="stack" method="post" action="/hub/login?next=${encodeURIComponent(next)}">
  <label>Username <input name="username" autocomplete="username" autocapitalize="none" autofocus required value="${esc(username)}"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  ${error ? `<p class="alert alert-danger" role="alert">${esc(error)}</p>` : ''}
  <button type="submit" class="primary">Log in</button>
</form></div>`,
  );
}

/** The profile picker: shown before a start when pool.yaml has profiles (JupyterHub's spawn form). */
function pickerPage(s: HubServices, who: string, next: string): string {
  const options = Object.entries(s.sessions.profiles())
    .map(([name, p]) => `<option value="${esc(name)}">${esc(name)}${p.description ? ` — ${esc(p.description)}` : ''}</option>`)
    .join('');
  return page(
    'Start',
    `<h1>Start my server</h1>
<form class="stack" method="post" action="/hub/home/server">
  <input type="hidden" name="next" value="${esc(next)}">
  <label>Profile <select name="profile">${options}</select></label>
  <button name="action" value="start" class="primary">Start</button>
</form>`,
    who,
  );
}

/**
 * Starts the user's server right after a login that leads to it (no `next`, or `next` on their own server), as
 * JupyterHub does: the login form's POST is what starts it, and the page it leads to shows the progress. With
 * profiles to choose from nothing starts here (`/hub/spawn` shows the picker). A start the pool refuses is left to
 * the page it leads to, which says why.
 */
async function startOnLogin(s: HubServices, name: string, next: string): Promise<void> {
  const mine = [userPrefix(name), `/hub${userPrefix(name)}`];
  const own = next === SPAWN_PATH || mine.some((prefix) => next.startsWith(prefix) || next === prefix.slice(0, -1));
  if (!own || Object.keys(s.sessions.profiles()).length > 0) return;
  const active = s.sessions.active(name);
  if (active && active.state !== 'stopping') return;
  const user = await s.store.getUser(name);
  if (!user || user.disabled) return;
  try {
    await s.sessions.start(user);
  } catch (error) {
    if (!(error instanceof HubError)) throw error;
  }
}

/**
 * Builds the page routes (mounted at `/hub`).
 *
 * @example
 * app.route('/hub', pageRoutes(services));
 */
export function pageRoutes(s: HubServices): Hono<HubEnv> {
  const pages = new Hono<HubEnv>();

  pages.get('/', (c) => c.redirect('/hub/home'));

  pages.get('/static/dspool.css', (c) => {
    c.header('content-type', 'text/css; charset=utf-8');
    c.header('cache-control', 'public, max-age=3600');
    return c.body(POOL_CSS);
  });

  // After login: straight to the user's server, started with progress; a profile picker first when there are profiles.
  pages.get('/spawn', (c) => {
    const who = c.get('identity');
    if (!who) return c.redirect(`/hub/login?next=${encodeURIComponent(SPAWN_PATH)}`);
    const target = `/hub/user/${who.user}/tree`;
    if (!s.sessions.active(who.user) && Object.keys(s.sessions.profiles()).length > 0) return c.html(pickerPage(s, who.user, target));
    return c.redirect(target);
  });

  pages.get('/login', (c) => {
    if (c.get('identity')) return c.redirect(safeNext(c.req.query('next')));
    return c.html(loginPage(safeNext(c.req.query('next'))));
  });

  pages.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const username = typeof form.username === 'string' ? form.username : '';
    const password = typeof form.password === 'string' ? form.password : '';
    const next = safeNext(c.req.query('next') ?? (typeof form.next === 'string' ? form.next : undefined));
    const problem = usernameProblem(username);
    if (problem) return c.html(loginPage(next, `Username ${problem}.`, username), 400);
    const cookie = await s.identities.login(username, password);
    if (!cookie) {
      s.events.record('user.login_failed', `failed login for ${username}`, { user: username, data: { from: c.req.header('x-forwarded-for') ?? null } });
      return c.html(loginPage(next, 'Invalid username or password.', username), 403);
    }
    s.events.record('user.login', `${username} logged in`, { user: username });
    setCookie(c, LOGIN_COOKIE, cookie, {
      path: '/', httpOnly: true, sameSite: 'Lax', maxAge: Math.floor(s.cookieMaxAgeMs / 1000),
      secure: c.req.header('x-forwarded-proto') === 'https',
    });
    await startOnLogin(s, username, next);
    return c.redirect(next, 302);
  });

  pages.get('/logout', async (c) => {
    const cookie = getCookie(c, LOGIN_COOKIE);
    if (cookie) {
      const user = await s.identities.logout(cookie);
      if (user) s.revoke(user);
    }
    deleteCookie(c, LOGIN_COOKIE, { path: '/' });
    return c.redirect('/hub/login');
  });

  pages.get('/home', async (c) => {
    const who = c.get('identity');
    if (!who) return c.redirect(`/hub/login?next=${encodeURIComponent('/hub/home')}`);
    const session = s.sessions.active(who.user);
    const state = session?.state ?? 'stopped';
    const running = state === 'running';
    const pool = session ? s.sessions.poolFieldsOf(session.id) : undefined;
    const profiles = Object.entries(s.sessions.profiles());
    const choose = profiles.length === 0 ? '' : `<label>Profile <select name="profile">${profiles
      .map(([name, p]) => `<option value="${esc(name)}">${esc(name)}${p.description ? ` — ${esc(p.description)}` : ''}</option>`)
      .join('')}</select></label> `;
    const body = `<h1>My server</h1>
<p id="status">Status: <strong>${esc(state)}</strong>${session?.instanceId ? ` on instance <code>${esc(session.instanceId)}</code>` : ''}${pool?.queuePosition ? ` · waiting for an instance (position ${pool.queuePosition})` : ''}</p>
${pool?.notice ? `<p class="alert alert-warning" role="status">${esc(pool.notice)}</p>` : ''}
<form class="row" method="post" action="/hub/home/server">
  ${running ? `<a class="btn primary" href="${userPrefix(who.user)}tree">Open my server</a>` : ''}
  ${running || state === 'starting' || state === 'pending'
    ? '<button name="action" value="stop" class="danger">Stop my server</button>'
    : `${choose}<button name="action" value="start" class="primary">Start my server</button>`}
</form>
${running ? '<p class="muted">Your notebooks on the shared drive are in <code>notebooks/remote</code>.</p>' : ''}
${await keysSection(s, who.user)}`;
    return c.html(page('Home', body, who.user));
  });

  pages.post('/home/keys', async (c) => {
    const who = c.get('identity');
    if (!who) return c.redirect('/hub/login');
    const form = await c.req.parseBody();
    if (typeof form.remove === 'string') {
      await s.store.deleteSshKey(who.user, form.remove);
      return c.redirect('/hub/home#ssh');
    }
    try {
      await registerSshKey(s, who.user, typeof form.key === 'string' ? form.key : '');
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      return c.html(page('Home', `<p class="alert alert-danger" role="alert">${esc(error.message)}</p><p><a href="/hub/home#ssh">Back</a></p>`, who.user), 400);
    }
    return c.redirect('/hub/home#ssh');
  });

  pages.post('/home/server', async (c) => {
    const who = c.get('identity');
    if (!who) return c.redirect('/hub/login');
    const form = await c.req.parseBody();
    if (form.action === 'stop') {
      await s.sessions.stop(who.user);
      return c.redirect('/hub/home');
    }
    const user = await s.store.getUser(who.user);
    if (user && typeof form.profile === 'string' && form.profile !== '') {
      try {
        await s.sessions.start(user, { profile: form.profile });
      } catch (error) {
        if (!(error instanceof HubError)) throw error;
        return c.html(page('Home', `<p class="alert alert-danger" role="alert">${esc(error.message)}</p><p><a href="/hub/home">Back</a></p>`, who.user), 400);
      }
    }
    // The picker sends where the user was going; the home page's button, their server's file list.
    return c.redirect(typeof form.next === 'string' ? safeNext(form.next) : `/hub/user/${who.user}/tree`);
  });

  // JupyterHub's "spawn pending" URL: the gateway sends browsers here when a user's server is not running.
  pages.get('/user/:name/*', (c) => spawnPage(c, s));
  pages.get('/user/:name', (c) => spawnPage(c, s));
  return pages;
}

async function spawnPage(c: Context<HubEnv>, s: HubServices): Promise<Response> {
  const name = c.req.param('name') ?? '';
  const who = c.get('identity');
  const here = new URL(c.req.url);
  if (!who) return c.redirect(`/hub/login?next=${encodeURIComponent(here.pathname + here.search)}`);
  const problem = usernameProblem(name);
  if (problem) return c.html(page('Not found', `<h1>Not found</h1><p class="alert alert-danger">Invalid username: ${esc(problem)}.</p>`, who.user), 404);
  if (who.user !== name && !who.admin) {
    return c.html(page('Forbidden', `<h1>Not your server</h1><p class="alert alert-danger">You are logged in as <strong>${esc(who.user)}</strong> and may only open your own server, not ${esc(name)}'s.</p><p><a href="${userPrefix(who.user)}tree">Open my server</a> · <a href="/hub/home">Home</a></p>`, who.user), 403);
  }
  const user = await s.store.getUser(name);
  if (!user) return c.html(page('Not found', `<h1>Not found</h1><p class="alert alert-danger">No user named ${esc(name)}.</p>`, who.user), 404);
  const rest = here.pathname.slice(`/hub/user/${name}`.length).replace(/^\//, '');
  const target = `${userPrefix(name)}${rest}${here.search}`;
  const active = s.sessions.active(name);
  if (active?.state === 'running') return c.redirect(target);
  const startable = !active || active.state === 'stopping';
  // Your own server with profiles to choose from: the picker first (it posts back and comes here again).
  if (startable && who.user === name && Object.keys(s.sessions.profiles()).length > 0) return c.html(pickerPage(s, who.user, here.pathname + here.search));
  if (startable) await s.sessions.start(user);
  const progressUrl = `/hub/api/users/${name}/server/progress`;
  const body = `<h1>Starting ${esc(name)}'s server</h1>
<progress id="bar" max="100" value="0"></progress>
<p id="message">Server requested…</p>
<ol id="log"></ol>
<noscript><p>This page updates with JavaScript; otherwise <a href="${esc(target)}">reload</a> in a few seconds.</p></noscript>
<script>
(function () {
  var target = ${JSON.stringify(target)};
  var source = new EventSource(${JSON.stringify(progressUrl)});
  source.onmessage = function (e) {
    var ev = JSON.parse(e.data);
    document.getElementById('bar').value = ev.progress || 0;
    document.getElementById('message').textContent = ev.message || '';
    var li = document.createElement('li'); li.textContent = ev.message || ''; document.getElementById('log').appendChild(li);
    if (ev.ready) { source.close(); window.location.replace(target); }
    if (ev.failed) { source.close(); document.getElementById('message').className = 'alert alert-danger'; }
  };
  source.onerror = function () { setTimeout(function () { window.location.reload(); }, 3000); source.close(); };
})();
</script>`;
  return c.html(page('Starting', body, who.user), 202);
}
