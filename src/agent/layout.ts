// A user's files on an instance. Everything a user saves where they save by default lives on the share: `$HOME` is
// `<share>/users/<name>/home` (Jupyter's landing folder, the SSH login directory, scp without a path), with
// `$HOME/notebooks/remote` → `<share>/users/<name>/notebooks`. What must not sit on a network share (SQLite files:
// IPython's history, Jupyter's notebook signatures; runtime files and sockets; caches) is pointed at the instance's
// own disk through environment variables (`sessionDirsEnv`). The agent also writes the Jupyter config it needs.
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { replaceFile } from '../lib/atomic-file.js';
import type { Logger } from '../lib/log.js';
import type { AgentUser } from '../protocol/agent.js';
import { JUPYTER_ACTIVITY_PY } from './activity-patch.js';
import { HomeUnreachableError, ShareUnavailableError } from './errors.js';

/** Where a user's files are on this instance. */
export interface UserPaths {
  /** `<share>/users/<name>`: the user's own folder on the share, theirs alone (0700). */
  readonly userDir: string;
  /** `<share>/users/<name>/home`: `$HOME`, on the share, 0700. */
  readonly home: string;
  /** `<share>/users/<name>/notebooks`: the user's notebooks on the share. */
  readonly shareNotebooks: string;
  /** `$HOME/notebooks/remote`, a symlink to `shareNotebooks`. */
  readonly link: string;
  /** `<scratchDir>/local/<name>`: the user's folder on the instance's own disk, 0700, gone with the instance. */
  readonly local: string;
  /** `JUPYTER_CONFIG_DIR` (instance disk): the config the agent writes for the user's server. */
  readonly jupyterConfigDir: string;
  /** `JUPYTER_DATA_DIR` (instance disk): notebook signatures (SQLite) and the cookie secret. */
  readonly jupyterDataDir: string;
  /** `IPYTHONDIR` (instance disk): IPython's SQLite history and profile. */
  readonly ipythonDir: string;
  /** `XDG_CACHE_HOME` (instance disk). */
  readonly cacheDir: string;
  /**
   * `JUPYTER_RUNTIME_DIR` and `XDG_RUNTIME_DIR` (instance disk, 0700): kernel connection files and IPC sockets.
   * Under the settings' short `runtimeDir` when the provider gives one, since a Unix socket path is limited to
   * about 107 bytes and kernels name theirs `kernel-<uuid>-ipc-<n>`.
   */
  readonly runtimeDir: string;
}

/** The settings `userPaths` reads. */
export interface PathSettings {
  readonly scratchDir: string;
  readonly sharePath: string;
  /** Short per-instance directory for users' runtime dirs (`<runtimeDir>/<name>`); absent: `<local>/runtime`. */
  readonly runtimeDir?: string | undefined;
}

/**
 * Computes a user's paths without touching the disk.
 *
 * @example
 * userPaths({ scratchDir: '/s', sharePath: '/share' }, 'alice').home; // '/share/users/alice/home'
 * userPaths({ scratchDir: '/s', sharePath: '/share' }, 'alice').link; // '/share/users/alice/home/notebooks/remote'
 */
export function userPaths(settings: PathSettings, name: string): UserPaths {
  const userDir = path.join(settings.sharePath, 'users', name);
  const home = path.join(userDir, 'home');
  const local = path.join(settings.scratchDir, 'local', name);
  return {
    userDir,
    home,
    shareNotebooks: path.join(userDir, 'notebooks'),
    link: path.join(home, 'notebooks', 'remote'),
    local,
    jupyterConfigDir: path.join(local, 'jupyter-config'),
    jupyterDataDir: path.join(local, 'jupyter-data'),
    ipythonDir: path.join(local, 'ipython'),
    cacheDir: path.join(local, 'cache'),
    runtimeDir: settings.runtimeDir ? path.join(settings.runtimeDir, name) : path.join(local, 'runtime'),
  };
}

/**
 * The environment that sends what must stay off the share to the instance's disk; part of every session
 * process's environment (servers, kernels, terminals, SSH).
 *
 * @example
 * sessionDirsEnv(userPaths(settings, 'alice')).IPYTHONDIR; // '<scratchDir>/local/alice/ipython'
 */
export function sessionDirsEnv(paths: UserPaths): Record<string, string> {
  return {
    JUPYTER_CONFIG_DIR: paths.jupyterConfigDir,
    JUPYTER_DATA_DIR: paths.jupyterDataDir,
    JUPYTER_RUNTIME_DIR: paths.runtimeDir,
    IPYTHONDIR: paths.ipythonDir,
    XDG_CACHE_HOME: paths.cacheDir,
    XDG_RUNTIME_DIR: paths.runtimeDir,
  };
}

/** What the layout functions need from their caller. */
export interface LayoutContext {
  readonly log: Logger;
  /** The agent runs as root: files go to the user, and work inside the user's folders runs with the user's IDs. */
  readonly asRoot: boolean;
  /** GID of the pool's team group (`<share>/team` is root:team, 2770); absent: no team group. */
  readonly teamGid?: number | undefined;
}

function lstatOrUndefined(target: string): Stats | undefined {
  try {
    return lstatSync(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Runs `fn` synchronously with the user's effective UID/GID when the agent is root, so that nothing inside a
 * folder the user controls is done with root's rights: a symlink planted there cannot make the agent write or chown
 * outside it. Synchronous on purpose: no other work may run while the IDs are switched.
 */
function asUser<T>(user: AgentUser, ctx: LayoutContext, fn: () => T): T {
  if (!ctx.asRoot || !process.seteuid || !process.setegid) return fn();
  process.setegid(user.gid);
  process.seteuid(user.uid);
  try {
    return fn();
  } finally {
    process.seteuid(0);
    process.setegid(0);
  }
}

/** Makes `dir` a real directory, moving aside a file or link found in its place. */
function realDirSync(dir: string, mode: number, ctx: LayoutContext): void {
  const info = lstatOrUndefined(dir);
  if (info?.isDirectory()) return;
  if (info) {
    const aside = `${dir}.moved-${Date.now()}`;
    ctx.log.warn({ path: dir, aside }, 'expected a directory; moved what was there aside');
    renameSync(dir, aside);
  }
  mkdirSync(dir, { mode });
}

/**
 * Makes `dir` (whose parent only root can write, so the user cannot swap it for a link) a real directory owned by
 * the user with exactly `mode`, repairing the owner and mode of one that exists. Ownership changes a network share
 * may refuse (sshfs maps owners on the server) are logged, not fatal.
 */
function ownedDirSync(dir: string, mode: number, user: AgentUser, ctx: LayoutContext): void {
  realDirSync(dir, mode, ctx);
  if (ctx.asRoot) {
    try {
      chownSync(dir, user.uid, user.gid);
    } catch (error) {
      ctx.log.warn({ dir, err: (error as Error).message }, 'cannot give a folder to its user');
    }
  }
  chmodSync(dir, mode);
}

/** A root-owned directory others may only traverse (or read, with `mode`), repaired when it exists. */
function rootDirSync(dir: string, mode: number, ctx: LayoutContext, gid?: number): void {
  realDirSync(dir, mode, ctx);
  if (ctx.asRoot) {
    try {
      chownSync(dir, 0, gid ?? 0);
    } catch (error) {
      ctx.log.warn({ dir, err: (error as Error).message }, 'cannot give a folder to root');
    }
  }
  chmodSync(dir, mode);
}

/**
 * Makes the user's folders on the share: `<share>/users` (root, 0711: nobody lists who has a folder),
 * `<share>/users/<name>` (the user's, 0700: nobody else reads anything below it; an existing one is repaired),
 * `$HOME` and `notebooks` inside it (made as the user), and `<share>/team` (root:team group, setgid 2770).
 * Throws `ShareUnavailableError` when they cannot be made.
 *
 * @example
 * prepareShare(paths, '/share', user, { log, asRoot: true, teamGid: 19999 });
 */
export function prepareShare(paths: UserPaths, sharePath: string, user: AgentUser, ctx: LayoutContext): void {
  try {
    const share = lstatOrUndefined(sharePath);
    if (!share) throw new Error('no such directory');
    rootDirSync(path.join(sharePath, 'users'), 0o711, ctx);
    const team = path.join(sharePath, 'team');
    if (ctx.asRoot && ctx.teamGid !== undefined) rootDirSync(team, 0o2770, ctx, ctx.teamGid);
    else realDirSync(team, 0o755, ctx);
    ownedDirSync(paths.userDir, 0o700, user, ctx);
  } catch (error) {
    throw new ShareUnavailableError(sharePath, (error as Error).message, { cause: error });
  }
  try {
    asUser(user, ctx, () => {
      for (const dir of [paths.home, paths.shareNotebooks]) {
        realDirSync(dir, 0o700, ctx);
        chmodSync(dir, 0o700);
      }
      readdirSync(paths.home);
    });
  } catch (error) {
    // The user's own folder exists (root made it): failing inside it means they cannot reach it.
    if ((error as NodeJS.ErrnoException).code === 'EACCES') throw new HomeUnreachableError(user.name, paths.home, { cause: error });
    throw new ShareUnavailableError(sharePath, (error as Error).message, { cause: error });
  }
}

/**
 * Makes the user's folders on the instance's own disk: `<scratchDir>/local/<name>` (the user's, 0700) with the
 * Jupyter config, data, IPython, cache and runtime directories named in `UserPaths`.
 *
 * @example
 * prepareLocal(paths, user, { log, asRoot: true });
 */
export function prepareLocal(paths: UserPaths, user: AgentUser, ctx: LayoutContext): void {
  const locals = path.dirname(paths.local);
  mkdirSync(locals, { recursive: true, mode: 0o711 });
  rootDirSync(locals, 0o711, ctx);
  ownedDirSync(paths.local, 0o700, user, ctx);
  if (!paths.runtimeDir.startsWith(`${paths.local}${path.sep}`)) {
    const runtimes = path.dirname(paths.runtimeDir);
    mkdirSync(runtimes, { recursive: true, mode: 0o711 });
    rootDirSync(runtimes, 0o711, ctx);
    ownedDirSync(paths.runtimeDir, 0o700, user, ctx);
  }
  try {
    asUser(user, ctx, () => {
      readdirSync(paths.local);
      for (const dir of [paths.jupyterConfigDir, paths.jupyterDataDir, paths.ipythonDir, paths.cacheDir, paths.runtimeDir]) {
        realDirSync(dir, 0o700, ctx);
        chmodSync(dir, 0o700);
      }
    });
  } catch (error) {
    throw new HomeUnreachableError(user.name, paths.local, { cause: error });
  }
}

/**
 * Makes `$HOME/notebooks/remote` a symlink to the user's share folder, fixing a missing or wrong link; a real
 * folder found there is moved aside, never deleted. Runs with the user's IDs when the agent is root.
 *
 * @example
 * linkNotebooks(paths, user, { log, asRoot: true });
 */
export function linkNotebooks(paths: UserPaths, user: AgentUser, ctx: LayoutContext): void {
  asUser(user, ctx, () => {
    realDirSync(path.dirname(paths.link), 0o700, ctx);
    const info = lstatOrUndefined(paths.link);
    if (info?.isSymbolicLink() && readlinkSync(paths.link) === paths.shareNotebooks) return;
    if (info && !info.isSymbolicLink()) {
      const aside = `${paths.link}.moved-${Date.now()}`;
      ctx.log.warn({ path: paths.link, aside }, 'notebooks/remote was not a link; moved it aside');
      renameSync(paths.link, aside);
    } else if (info) {
      ctx.log.info({ path: paths.link, was: readlinkSync(paths.link) }, 'fixing the notebooks/remote link');
    }
    // Made beside it and renamed over it, so the link is never missing for a reader.
    const temp = `${paths.link}.tmp-${process.pid}`;
    rmSync(temp, { force: true });
    symlinkSync(paths.shareNotebooks, temp);
    renameSync(temp, paths.link);
  });
}

/**
 * Jupyter Notebook 6 config the agent writes for every server. Besides plain settings it turns Nagle's
 * algorithm off on the kernel WebSocket: Tornado leaves TCP_NODELAY off, so each small reply frame waits for
 * the client's delayed ACK (~40 ms per execute round trip on Linux). The patch calls `set_nodelay(True)` when
 * the socket opens and marks the class so tests can see it applied.
 */
export const JUPYTER_CONFIG_PY = `# Written by the dspool agent on every server start; edits are overwritten.
c = get_config()  # noqa: F821
c.NotebookApp.open_browser = False
# The agent picks the port; fail rather than silently move to another one.
c.NotebookApp.port_retries = 0
# Requests arrive through the dspool gateway with the pool's Host header.
c.NotebookApp.allow_remote_access = True
c.NotebookApp.quit_button = False
# Kernels talk to the server over Unix sockets in the user's 0700 runtime directory (JUPYTER_RUNTIME_DIR on the
# instance's disk), never over loopback TCP ports that any other user on the instance could connect to.
c.KernelManager.transport = 'ipc'

def _dspool_nodelay():
    from notebook.services.kernels.handlers import ZMQChannelsHandler
    if getattr(ZMQChannelsHandler, '_dspool_nodelay', False):
        return
    original_open = ZMQChannelsHandler.open
    def open(self, *args, **kwargs):
        self.set_nodelay(True)
        return original_open(self, *args, **kwargs)
    ZMQChannelsHandler.open = open
    ZMQChannelsHandler._dspool_nodelay = True
    ZMQChannelsHandler._dspool_original_open = original_open

try:
    _dspool_nodelay()
except Exception as error:  # another server (JupyterLab, jupyter_server) has no such handler
    import sys
    print('dspool: kernel websocket nodelay patch not applied: %r' % (error,), file=sys.stderr)

# The gateway adds the server's token to every proxied request, so pages need not carry it; notebook 6 would
# otherwise embed it in every HTML page (data-jupyter-api-token, ?token= links) where any browser script reads it.
def _dspool_hide_token():
    from notebook.base.handlers import IPythonHandler
    original = IPythonHandler.template_namespace
    if getattr(IPythonHandler, '_dspool_token_hidden', False):
        return
    def template_namespace(self):
        namespace = dict(original.fget(self))
        namespace['token'] = ''
        return namespace
    IPythonHandler.template_namespace = property(template_namespace)
    IPythonHandler._dspool_token_hidden = True

try:
    _dspool_hide_token()
except Exception as error:
    import sys
    print('dspool: token-hiding patch not applied: %r' % (error,), file=sys.stderr)

# Jupyter's Logout ends the pool's login (as JupyterHub's single-user server does): notebook 6 would only say
# "Successfully logged out" while the pool's cookie, which is what lets the browser in, stays valid.
def _dspool_logout_handler():
    from notebook.auth.logout import LogoutHandler
    class DspoolLogoutHandler(LogoutHandler):
        def get(self):
            self.clear_login_cookie()
            self.redirect('/hub/logout')
    return DspoolLogoutHandler

try:
    c.NotebookApp.logout_handler_class = _dspool_logout_handler()
except Exception as error:
    import sys
    print('dspool: logout handler not installed: %r' % (error,), file=sys.stderr)
${JUPYTER_ACTIVITY_PY}`;

/**
 * Loaded by notebook 6 on every page (`<config dir>/custom/custom.js`): shows the hub's notice for this server
 * (e.g. "this instance is being drained", "this idle server stops at …" with a "Keep it running" button) as a
 * banner, saves the open notebook when the hub says the server is stopping for idleness, adds a "Pool home" link
 * beside Jupyter's Logout, and makes Logout end the pool's login. It reads the user's model with the login cookie.
 */
export const JUPYTER_CUSTOM_JS = `// Written by the dspool agent; edits are overwritten.
(function () {
  var match = window.location.pathname.match(/^\\/user\\/([^\\/]+)\\//);
  if (!match) return;
  var api = '/hub/api/users/' + match[1];
  var saved = false;
  function show(text, cullAt) {
    var banner = document.getElementById('dspool-notice');
    if (!text) { if (banner) banner.remove(); return; }
    if (!banner) {
      banner = document.createElement('div');
      banner.id = 'dspool-notice';
      banner.setAttribute('role', 'status');
      banner.style.cssText = 'position:fixed;top:0;left:0;right:0;z-index:10000;padding:6px 12px;' +
        'background:#fff3cd;color:#664d03;border-bottom:1px solid #ffe69c;font:14px sans-serif';
      document.body.appendChild(banner);
    }
    banner.textContent = 'dspool: ' + text + ' ';
    // An idle warning: one click keeps the server (POST …/server/extend), as \`dspool extend\` does.
    if (cullAt) {
      var keep = document.createElement('button');
      keep.id = 'dspool-extend';
      keep.textContent = 'Keep it running';
      keep.onclick = function () {
        fetch(api + '/server/extend', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: '{}' })
          .then(function () { poll(false); }, function () { poll(false); });
      };
      banner.appendChild(keep);
    }
  }
  // The server is stopping for idleness: save open notebooks first (the hub waits a bounded time for it).
  function save() {
    if (saved) return;
    saved = true;
    try {
      if (window.Jupyter && Jupyter.notebook && Jupyter.notebook.save_checkpoint) Jupyter.notebook.save_checkpoint();
      if (window.Jupyter && Jupyter.editor && Jupyter.editor.save) Jupyter.editor.save();
    } catch (e) {}
  }
  function poll(again) {
    // The header tells the hub an open page polls (so a stop waits for it to save).
    fetch(api, { credentials: 'same-origin', headers: { 'X-Dspool-Page': '1' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (user) {
        var s = user && user.servers && user.servers[''];
        show(s && s.notice, s && s.cull_at);
        if (s && s.save_requested) save();
        // Every 10 s; every 2 s while an idle warning stands, so a save request is seen in time.
        if (again) setTimeout(function () { poll(true); }, s && s.cull_at ? 2000 : 10000);
      })
      .catch(function () { if (again) setTimeout(function () { poll(true); }, 30000); });
  }
  poll(true);
  // A way back to the pool's home page (stop the server, SSH keys) beside Jupyter's Logout, which ends the
  // pool's login (the server's logout handler sends the browser to /hub/logout; the click goes there directly).
  function addHomeLink() {
    var widget = document.getElementById('login_widget');
    if (!widget || document.getElementById('dspool-home')) return;
    var home = document.createElement('a');
    home.id = 'dspool-home';
    home.href = '/hub/home';
    home.className = 'btn btn-default btn-sm navbar-btn';
    home.title = 'The pool\\'s home page: start or stop your server, SSH keys';
    home.style.marginRight = '4px';
    home.textContent = 'Pool home';
    widget.parentNode.insertBefore(home, widget);
  }
  document.addEventListener('click', function (e) {
    if (e.target && e.target.closest && e.target.closest('#logout')) {
      e.preventDefault();
      e.stopImmediatePropagation();
      window.location.href = '/hub/logout';
    }
  }, true);
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', addHomeLink);
  else addHomeLink();
})();
`;

/**
 * Writes the per-user Jupyter config directory (on the instance's disk, the user's own) with
 * `JUPYTER_CONFIG_PY`. Runs with the user's IDs when the agent is root.
 *
 * @example
 * writeJupyterConfig(paths, user, { log, asRoot: true });
 */
export function writeJupyterConfig(paths: UserPaths, user: AgentUser, ctx: LayoutContext): void {
  asUser(user, ctx, () => {
    realDirSync(paths.jupyterConfigDir, 0o700, ctx);
    replaceFile(path.join(paths.jupyterConfigDir, 'jupyter_notebook_config.py'), JUPYTER_CONFIG_PY, 0o644);
    realDirSync(path.join(paths.jupyterConfigDir, 'custom'), 0o700, ctx);
    replaceFile(path.join(paths.jupyterConfigDir, 'custom', 'custom.js'), JUPYTER_CUSTOM_JS, 0o644);
  });
}
