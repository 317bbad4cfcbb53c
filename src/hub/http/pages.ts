// The plain web pages: login, home (my server: start/stop, status) and the progress page shown while a
// server starts. No external assets; a page works without JavaScript except for live progress.
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { LOGIN_COOKIE } from '../../protocol/gateway.js';
import { usernameProblem } from '../../lib/names.js';
import { HubError } from '../errors.js';
import { userPrefix } from '../sessions/manager.js';
import { DEFAULT_EXTENSION_MS } from '../cull/index.js';
import { registerSshKey } from '../auth/ssh-keys.js';
import type { HubEnv, HubServices } from './services.js';
import { escapeHtml as esc } from '../../lib/html.js';


/** A page in the hub's look; `wide` pages (the admin page) get more room. */
export function page(title: string, body: string, who?: string, wide?: 'admin'): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · dspool</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
body:has(main.admin){max-width:64rem}
header{display:flex;justify-content:space-between;align-items:center;margin-bottom:2rem}
h1{font-size:1.4rem;margin:0} a{color:#0b5cad} .muted{color:#57606a}
form.stack{display:grid;gap:.6rem;max-width:20rem} input{padding:.45rem;font-size:1rem}
button{padding:.5rem 1rem;font-size:1rem;cursor:pointer} .error{color:#b3261e}
progress{width:100%;height:1rem} ol#log{color:#57606a;font-size:.9rem}
</style></head><body>
<header><h1>dspool</h1>${who ? `<span class="muted">${esc(who)} · <a href="/hub/logout">log out</a></span>` : ''}</header>
${wide ? `<main class="${wide}">${body}</main>` : body}
</body></html>`;
}

/** The home page's SSH section: the user's keys, a form to add one, and how to connect. */
async function keysSection(s: HubServices, user: string): Promise<string> {
  const keys = await s.store.listSshKeys(user);
  const list = keys.length === 0
    ? '<p class="muted">No keys yet: you can also log in over SSH with your password.</p>'
    : `<ul>${keys
      .map((k) => `<li><code>${esc(k.algo)} ${esc(k.fingerprint)}</code> ${esc(k.comment)} <form method="post" action="/hub/home/keys" style="display:inline"><button name="remove" value="${esc(k.id)}">Remove</button></form></li>`)
      .join('')}</ul>`;
  return `<h2 id="ssh">SSH</h2>
<p>Terminals, scp/sftp and VS Code Remote-SSH reach your server's instance through the pool's SSH port
(<code>dspool ssh-config</code> prints a ready <code>~/.ssh/config</code> block).</p>
${list}
<form class="stack" method="post" action="/hub/home/keys">
  <label>Add a public key <textarea name="key" rows="3" placeholder="ssh-ed25519 AAAA… you@laptop" required></textarea></label>
  <button type="submit">Add key</button>
</form>`;
}

/** Why the user's last server stopped, shown at their next visit (an idle cull, a drain, a failure). */
async function lastStop(s: HubServices, user: string): Promise<string> {
  const last = await s.store.latestSession(user, '');
  if (!last?.stopped || !last.reason) return '';
  return `<p id="last-stop" class="muted" role="status">Your last server stopped at ${esc(last.stopped.replace('T', ' ').slice(0, 19))} UTC: ${esc(last.reason)}.</p>`;
}

/** Only local paths are accepted as `next`, so the login page cannot be used to send users elsewhere. */
function safeNext(next: string | undefined): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.includes('\\') ? next : '/hub/home';
}

function loginPage(next: string, error?: string, username = ''): string {
  return page(
    'Log in',
    `<form class="stack" method="post" action="/hub/login?next=${encodeURIComponent(next)}">
  <label>Username <input name="username" autocomplete="username" autofocus required value="${esc(username)}"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
  <button type="submit">Log in</button>
</form>`,
  );
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
    const body = `<h2>My server</h2>
<p id="status">Status: <strong>${esc(state)}</strong>${session?.instanceId ? ` on instance <code>${esc(session.instanceId)}</code>` : ''}${pool?.queuePosition ? ` · waiting for an instance (position ${pool.queuePosition})` : ''}</p>
${pool?.notice ? `<p class="error" role="status">${esc(pool.notice)}</p>` : ''}
${pool?.cullAt ? '<form method="post" action="/hub/home/extend"><button name="for" value="1h">Keep it running for 1 hour</button></form>' : ''}
${session ? '' : await lastStop(s, who.user)}
${running ? `<p><a href="${userPrefix(who.user)}tree">Open my server</a> · your notebooks on the shared drive are in <code>notebooks/remote</code></p>` : ''}
<form method="post" action="/hub/home/server">
  ${running || state === 'starting' || state === 'pending'
    ? '<button name="action" value="stop">Stop my server</button>'
    : `${choose}<button name="action" value="start">Start my server</button>`}
</form>
${await keysSection(s, who.user)}`;
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
      return c.html(page('Home', `<p class="error" role="alert">${esc(error.message)}</p><p><a href="/hub/home#ssh">Back</a></p>`, who.user), 400);
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
        return c.html(page('Home', `<p class="error" role="alert">${esc(error.message)}</p><p><a href="/hub/home">Back</a></p>`, who.user), 400);
      }
    }
    return c.redirect(`/hub/user/${who.user}/tree`);
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
  if (problem) return c.html(page('Not found', `<p class="error">Invalid username: ${esc(problem)}.</p>`, who.user), 404);
  if (who.user !== name && !who.admin) {
    return c.html(page('Forbidden', `<p class="error">You may only open your own server.</p>`, who.user), 403);
  }
  const user = await s.store.getUser(name);
  if (!user) return c.html(page('Not found', `<p class="error">No user named ${esc(name)}.</p>`, who.user), 404);
  const rest = here.pathname.slice(`/hub/user/${name}`.length).replace(/^\//, '');
  const target = `${userPrefix(name)}${rest}${here.search}`;
  const active = s.sessions.active(name);
  if (active?.state === 'running') return c.redirect(target);
  if (!active || active.state === 'stopping') await s.sessions.start(user);
  const progressUrl = `/hub/api/users/${name}/server/progress`;
  const body = `<h2>Starting ${esc(name)}'s server</h2>
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
    if (ev.failed) { source.close(); document.getElementById('message').className = 'error'; }
  };
  source.onerror = function () { setTimeout(function () { window.location.reload(); }, 3000); source.close(); };
})();
</script>`;
  return c.html(page('Starting', body, who.user), 202);
}
