// The plain web pages: login, home (my server: start/stop, status) and the progress page shown while a
// server starts. No external assets; a page works without JavaScript except for live progress.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { ACK_COOKIE, LOGIN_COOKIE, USER_HOST_AUTHORIZE_PATH, USER_HOST_CALLBACK_PATH, adminAck } from '../../protocol/gateway.js';
import { usernameProblem } from '../../lib/names.js';
import { HubError } from '../errors.js';
import { userPrefix } from '../sessions/manager.js';
import { DEFAULT_EXTENSION_MS } from '../cull/index.js';
import { registerSshKey } from '../auth/ssh-keys.js';
import type { HubEnv, HubServices } from './services.js';
import { escapeHtml as esc } from '../../lib/html.js';
import { clientAddress, csrfInput, csrfValid, originProblem, ownOrigin, safeNext } from './forms.js';
import { POOL_CSS, STYLESHEET_PATH } from '../../lib/style.js';

/**
 * A page in the hub's look; `wide` pages (the admin page) get more room.
 *
 * @example
 * c.html(page('Log out', `<form method="post" action="/hub/logout">…</form>`, who.user));
 * // '<!doctype html>…<title>Log out · dspool</title>…'
 */
export function page(title: string, body: string, who?: string, wide?: 'admin'): string {
  const nav = who
    ? `<nav><span>${esc(who)}</span><a href="/hub/home">Home</a><a href="/hub/logout">Log out</a></nav>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · dspool</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head><body>
<header class="bar"><div class="wrap"><a class="brand" href="/hub/home">ds<b>pool</b></a>${nav}</div></header>
<main class="wrap${wide ? ` ${wide}` : ''}">
${body}
</main>
</body></html>`;
}

/** The home page's SSH section: the user's keys, a form to add one, and how to connect. */
async function keysSection(s: HubServices, user: string, csrf: string): Promise<string> {
  const keys = await s.store.listSshKeys(user);
  const list = keys.length === 0
    ? '<p class="muted">No keys yet: you can also log in over SSH with your password.</p>'
    : `<ul class="keys">${keys
      .map((k) => `<li><code>${esc(k.algo)} ${esc(k.fingerprint)}</code> <span>${esc(k.comment)}</span> <form method="post" action="/hub/home/keys">${csrf}<button name="remove" value="${esc(k.id)}">Remove</button></form></li>`)
      .join('')}</ul>`;
  return `<h2 id="ssh">SSH</h2>
<p>Terminals, scp/sftp and VS Code Remote-SSH reach your server's instance through the pool's SSH port
(<code>dspool ssh-config --install</code> sets up <code>~/.ssh/config</code> and <code>known_hosts</code> for <code>ssh dspool</code>).</p>
${list}
<form class="stack" method="post" action="/hub/home/keys">${csrf}
  <label>Add a public key <textarea name="key" rows="3" placeholder="ssh-ed25519 AAAA… you@laptop" required></textarea></label>
  <button type="submit" class="primary">Add key</button>
</form>`;
}

/** Why the user's last server stopped, shown at their next visit (an idle cull, a drain, a failure). */
async function lastStop(s: HubServices, user: string): Promise<string> {
  const last = await s.store.latestSession(user, '');
  if (!last?.stopped || !last.reason) return '';
  return `<p id="last-stop" class="muted" role="status">Your last server stopped at ${esc(last.stopped.replace('T', ' ').slice(0, 19))} UTC: ${esc(last.reason)}.</p>`;
}

/** Where a login with no `next` goes: the user's server, started at once (as JupyterHub does). */
const SPAWN_PATH = '/hub/spawn';

/** `next` after login: a same-origin path (forms.ts `safeNext`), or the user's server when none was asked for. */
function loginNext(next: string | undefined): string {
  return next === undefined || next === '' ? SPAWN_PATH : safeNext(next);
}

function loginPage(next: string, csrf: string, error?: string, username = ''): string {
  return page(
    'Log in',
    `<div class="panel narrow"><h1>Log in</h1>
<form class="stack" method="post" action="/hub/login?next=${encodeURIComponent(next)}">${csrf}
  <label>Username <input name="username" autocomplete="username" autocapitalize="none" autofocus required value="${esc(username)}"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  ${error ? `<p class="alert alert-danger" role="alert">${esc(error)}</p>` : ''}
  <button type="submit" class="primary">Log in</button>
</form></div>`,
  );
}

/** The profile picker: shown before a start when pool.yaml has profiles (JupyterHub's spawn form). */
function pickerPage(s: HubServices, who: string, next: string, csrf: string): string {
  const options = Object.entries(s.sessions.profiles())
    .map(([name, p]) => `<option value="${esc(name)}">${esc(name)}${p.description ? ` — ${esc(p.description)}` : ''}</option>`)
    .join('');
  return page(
    'Start',
    `<h1>Start my server</h1>
<form class="stack" method="post" action="/hub/home/server">${csrf}
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

  // Every form post (login, logout, starting a server, keys) must come from this site (Origin: scheme, host and
  // port) and carry the CSRF token bound to this browser's cookies; otherwise nothing happens.
  const formGuard: MiddlewareHandler<HubEnv> = async (c, next) => {
    if (c.req.method !== 'POST') return next();
    const problem = originProblem(c) ?? ((await csrfValid(c, s.gatewaySecret)) ? undefined : 'the form is missing its CSRF token, or it has expired');
    if (problem === undefined) return next();
    return c.html(page('Refused', `<p class="error" role="alert">Refused: ${esc(problem)}.</p>
<p>Nothing was changed. <a href="${esc(c.req.path.startsWith('/hub/login') ? '/hub/login' : '/hub/home')}">Go back</a> and submit the form again.</p>`), 403);
  };
  for (const path of ['/login', '/logout', '/home/*', '/user/*', '/confirm/*']) pages.use(path, formGuard);

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
    if (!s.sessions.active(who.user) && Object.keys(s.sessions.profiles()).length > 0) return c.html(pickerPage(s, who.user, target, csrfInput(c, s.gatewaySecret)));
    return c.redirect(target);
  });

  pages.get('/login', (c) => {
    if (c.get('identity')) return c.redirect(loginNext(c.req.query('next')));
    return c.html(loginPage(loginNext(c.req.query('next')), csrfInput(c, s.gatewaySecret)));
  });

  pages.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const username = typeof form.username === 'string' ? form.username : '';
    const password = typeof form.password === 'string' ? form.password : '';
    const next = loginNext(c.req.query('next') ?? (typeof form.next === 'string' ? form.next : undefined));
    const again = (status: 400 | 403 | 429 | 503, error: string): Response =>
      c.html(loginPage(next, csrfInput(c, s.gatewaySecret), error, username), status);
    const problem = usernameProblem(username);
    if (problem) return again(400, `Username ${problem}.`);
    const result = await s.logins.login('web', username, password, clientAddress(c, s.gatewaySecret));
    if (result.verdict === 'limited') {
      c.header('Retry-After', String(Math.ceil(result.retryAfterMs / 1000)));
      return again(429, `Too many failed logins from your address; try again in ${Math.ceil(result.retryAfterMs / 1000)} s.`);
    }
    if (result.verdict === 'busy') {
      c.header('Retry-After', '5');
      return again(503, 'Too many logins are being checked right now; try again in a moment.');
    }
    const cookie = result.verdict === 'allowed' ? result.cookie : undefined;
    if (cookie === undefined) return again(403, 'Invalid username or password.');
    // A login is intent to work: the autoscaler wakes a pool scaled to zero (a no-op without autoscaling).
    s.intent(username, 'login');
    setCookie(c, LOGIN_COOKIE, cookie, {
      path: '/', httpOnly: true, sameSite: 'Lax', maxAge: Math.floor(s.cookieMaxAgeMs / 1000),
      secure: c.req.header('x-forwarded-proto') === 'https',
    });
    await startOnLogin(s, username, next);
    return c.redirect(next, 302);
  });

  // Logging out takes a POST (a cross-site link or image must not end a session); the GET asks.
  pages.get('/logout', (c) => {
    const who = c.get('identity');
    if (!who) return c.redirect('/hub/login');
    return c.html(page('Log out', `<form method="post" action="/hub/logout">${csrfInput(c, s.gatewaySecret)}
  <p>Log out of dspool? Your server keeps running.</p>
  <button type="submit">Log out</button>
</form>`, who.user));
  });

  pages.post('/logout', async (c) => {
    const cookie = getCookie(c, LOGIN_COOKIE);
    if (cookie) {
      await s.hostLogins.logout(cookie);
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
    const csrf = csrfInput(c, s.gatewaySecret);
    const body = `<h1>My server</h1>
<p id="status">Status: <strong>${esc(state)}</strong>${session?.instanceId ? ` on instance <code>${esc(session.instanceId)}</code>` : ''}${pool?.queuePosition ? ` · waiting for an instance (position ${pool.queuePosition})` : ''}</p>
${pool?.notice ? `<p class="alert alert-warning" role="status">${esc(pool.notice)}</p>` : ''}
${pool?.cullAt ? `<form method="post" action="/hub/home/extend">${csrf}<button name="for" value="1h">Keep it running for 1 hour</button></form>` : ''}
${session ? '' : await lastStop(s, who.user)}
<form class="row" method="post" action="/hub/home/server">${csrf}
  ${running ? `<a class="btn primary" href="${userPrefix(who.user)}tree">Open my server</a>` : ''}
  ${running || state === 'starting' || state === 'pending'
    ? '<button name="action" value="stop" class="danger">Stop my server</button>'
    : `${choose}<button name="action" value="start" class="primary">Start my server</button>`}
</form>
${running ? '<p class="muted">Your notebooks on the shared drive are in <code>notebooks/remote</code>.</p>' : ''}
${await keysSection(s, who.user, csrf)}`;
    return c.html(page('Home', body, who.user));
  });

  pages.post('/home/extend', async (c) => {
    const who = c.get('identity');
    if (!who) return c.redirect('/hub/login');
    try {
      s.culler.extend(who.user, DEFAULT_EXTENSION_MS);
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      return c.html(page('Home', `<p class="error" role="alert">${esc(error.message)}</p><p><a href="/hub/home">Back</a></p>`, who.user), 409);
    }
    return c.redirect('/hub/home');
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
    // This form is the start (a same-site POST with its CSRF token); the page it leads to only shows progress.
    const user = await s.store.getUser(who.user);
    const active = s.sessions.active(who.user);
    if (user && (!active || active.state === 'stopping')) {
      try {
        await s.sessions.start(user, typeof form.profile === 'string' && form.profile !== '' ? { profile: form.profile } : undefined);
      } catch (error) {
        if (!(error instanceof HubError)) throw error;
        return c.html(page('Home', `<p class="alert alert-danger" role="alert">${esc(error.message)}</p><p><a href="/hub/home">Back</a></p>`, who.user), 400);
      }
    }
    // The picker sends where the user was going; the home page's button, their server's file list.
    return c.redirect(typeof form.next === 'string' ? safeNext(form.next) : `/hub/user/${who.user}/tree`);
  });

  // JupyterHub's "spawn pending" URL: the gateway sends browsers here when a user's server is not running. The GET
  // only shows (a start button, or the progress of a start under way); starting takes the POST.
  pages.get('/user/:name/*', (c) => spawnPage(c, s, false));
  pages.get('/user/:name', (c) => spawnPage(c, s, false));
  pages.post('/user/:name/*', (c) => spawnPage(c, s, true));
  pages.post('/user/:name', (c) => spawnPage(c, s, true));

  // Without userHost an admin opening another user's server runs that user's JavaScript on the hub's origin: the
  // gateway sends them here first, and only the POST (with its CSRF token) lets them through, for this server.
  // With userHost: a user host sends a browser without its own login here; it goes back with a one-time code.
  pages.get(USER_HOST_AUTHORIZE_PATH.slice('/hub'.length), (c) => authorizeUserHost(c, s));

  pages.get('/confirm/:name', (c) => confirmPage(c, s, false));
  pages.post('/confirm/:name', (c) => confirmPage(c, s, true));
  return pages;
}

async function authorizeUserHost(c: Context<HubEnv>, s: HubServices): Promise<Response> {
  const who = c.get('identity');
  const name = c.req.query('user') ?? '';
  const problem = usernameProblem(name);
  if (s.userHost === null || problem) return c.html(page('Not found', '<p class="error">No such user host.</p>', who?.user), 404);
  const prefix = userPrefix(name);
  const asked = safeNext(c.req.query('next'));
  const next = asked.startsWith(prefix) ? asked : prefix;
  const cookie = getCookie(c, LOGIN_COOKIE);
  if (!who || !c.get('viaCookie') || cookie === undefined) {
    const here = `${USER_HOST_AUTHORIZE_PATH}?${new URLSearchParams({ user: name, next }).toString()}`;
    return c.redirect(`/hub/login?next=${encodeURIComponent(here)}`);
  }
  if (who.user !== name && !who.admin) return c.html(page('Forbidden', '<p class="error">You may only open your own server.</p>', who.user), 403);
  const origin = new URL(ownOrigin(c) ?? 'http://localhost');
  origin.hostname = s.userHost.replace('{user}', name);
  const code = s.hostLogins.issue(who.user, name, cookie);
  return c.redirect(`${origin.origin}${USER_HOST_CALLBACK_PATH}?${new URLSearchParams({ code, next }).toString()}`);
}

async function confirmPage(c: Context<HubEnv>, s: HubServices, confirmed: boolean): Promise<Response> {
  const name = c.req.param('name') ?? '';
  const who = c.get('identity');
  const prefix = userPrefix(name);
  const asked = safeNext(c.req.query('next'));
  const next = asked.startsWith(prefix) ? asked : `${prefix}tree`;
  if (!who) return c.redirect(`/hub/login?next=${encodeURIComponent(`/hub/confirm/${name}?next=${encodeURIComponent(next)}`)}`);
  const problem = usernameProblem(name);
  if (problem) return c.html(page('Not found', `<p class="error">Invalid username: ${esc(problem)}.</p>`, who.user), 404);
  if (who.user === name) return c.redirect(next);
  if (!who.admin) return c.html(page('Forbidden', `<p class="error">You may only open your own server.</p>`, who.user), 403);
  const cookie = getCookie(c, LOGIN_COOKIE);
  if (confirmed && cookie !== undefined) {
    setCookie(c, ACK_COOKIE, adminAck(s.gatewaySecret, name, cookie), {
      path: prefix, httpOnly: true, sameSite: 'Strict', secure: c.req.header('x-forwarded-proto') === 'https',
    });
    s.events.record('user.admin_access', `${who.user} (admin) opened ${name}'s server after the warning`, { user: name, data: { admin: who.user } });
    return c.redirect(next, 303);
  }
  return c.html(page('Opening another user\'s server', `<h2>You are about to open ${esc(name)}'s server as an admin</h2>
<p class="error" role="alert">Everything on that server — notebooks, their outputs, extensions, <code>custom.js</code> — was written by
${esc(name)}, and its JavaScript runs in your browser on the hub's own address (this pool has no
<code>gateway.userHost</code>). While you look at it, that code can act with your admin login: call the hub's API,
read other users' servers, create tokens.</p>
<p>Open it only if you trust what ${esc(name)} may have put there. Setting <code>gateway.userHost</code> gives every server
its own origin and removes this risk.</p>
<form method="post" action="/hub/confirm/${esc(name)}?next=${esc(encodeURIComponent(next))}">${csrfInput(c, s.gatewaySecret)}
  <button type="submit">Continue to ${esc(name)}'s server</button> <a href="/hub/home">Cancel</a>
</form>`, who.user));
}

async function spawnPage(c: Context<HubEnv>, s: HubServices, start: boolean): Promise<Response> {
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
  if (active?.state === 'running') return c.redirect(target, start ? 303 : 302);
  const startable = !active || active.state === 'stopping';
  if (start) {
    if (startable) await s.sessions.start(user);
    // Post/redirect/get: the GET shows the progress of the start now under way.
    return c.redirect(`${here.pathname}${here.search}`, 303);
  }
  // Your own server with profiles to choose from: the picker first (it posts and comes back here).
  if (startable && who.user === name && Object.keys(s.sessions.profiles()).length > 0) {
    return c.html(pickerPage(s, who.user, here.pathname + here.search, csrfInput(c, s.gatewaySecret)));
  }
  // A GET never starts a server (a cross-site link or image must not): it offers the button.
  if (startable) {
    const whose = who.user === name ? 'Your server is' : `${esc(name)}'s server is`;
    return c.html(page('Start server', `<div class="panel narrow"><h1>${whose} not running</h1>
<form method="post" action="${esc(here.pathname + here.search)}">${csrfInput(c, s.gatewaySecret)}
  <button class="primary" type="submit" name="action" value="start">Start ${who.user === name ? 'my' : `${esc(name)}'s`} server</button>
</form></div>`, who.user));
  }
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
