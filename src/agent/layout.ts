// A user's files on an instance: local `$HOME`, their folders on the share, the `notebooks/remote` link and
// the Jupyter config the agent writes for them.
import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { chmod, chown, lchown, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/log.js';
import type { AgentUser } from '../protocol/agent.js';
import { JUPYTER_ACTIVITY_PY } from './activity-patch.js';
import { HomeUnreachableError, ShareUnavailableError } from './errors.js';

/** Where a user's files are on this instance. */
export interface UserPaths {
  /** `<scratchDir>/home/<name>`: local to the instance, mode 0700. */
  readonly home: string;
  /** `<share>/users/<name>/notebooks`: the user's notebooks on the share. */
  readonly shareNotebooks: string;
  /** `$HOME/notebooks/remote`, a symlink to `shareNotebooks`. */
  readonly link: string;
  /** Directory given to Jupyter as `JUPYTER_CONFIG_DIR`. */
  readonly jupyterConfigDir: string;
}

/**
 * Computes a user's paths without touching the disk.
 *
 * @example
 * userPaths({ scratchDir: '/s', sharePath: '/share' }, 'alice').link; // '/s/home/alice/notebooks/remote'
 */
export function userPaths(settings: { scratchDir: string; sharePath: string }, name: string): UserPaths {
  const home = path.join(settings.scratchDir, 'home', name);
  return {
    home,
    shareNotebooks: path.join(settings.sharePath, 'users', name, 'notebooks'),
    link: path.join(home, 'notebooks', 'remote'),
    jupyterConfigDir: path.join(home, '.dspool', 'jupyter'),
  };
}

/** What the layout functions need from their caller. */
export interface LayoutContext {
  readonly log: Logger;
  /** The agent runs as root: files go to the user, and work inside `$HOME` runs with the user's IDs. */
  readonly asRoot: boolean;
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
 * folder the user controls (their `$HOME`) is done with root's rights: a symlink planted there cannot make the
 * agent write or chown outside it. Synchronous on purpose: no other work may run while the IDs are switched.
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
 * Makes the user's local `$HOME` (`<scratchDir>/home/<name>`, mode 0700, owned by the user).
 *
 * @example
 * await prepareHome(paths, user, { log, asRoot: true });
 */
export async function prepareHome(paths: UserPaths, user: AgentUser, ctx: LayoutContext): Promise<void> {
  // `<scratchDir>/home` is root's, so `home` itself cannot be swapped for a link by the user.
  const homes = path.dirname(paths.home);
  await mkdir(homes, { recursive: true, mode: 0o755 });
  await chmod(homes, 0o755);
  const info = await lstat(paths.home).catch(() => undefined);
  if (info && !info.isDirectory()) throw new Error(`${paths.home} exists and is not a directory`);
  if (!info) await mkdir(paths.home, { mode: 0o700 });
  await chmod(paths.home, 0o700);
  if (ctx.asRoot) await chown(paths.home, user.uid, user.gid);
  try {
    // access(2) checks the real UID, not the effective one: list the folder instead.
    asUser(user, ctx, () => readdirSync(paths.home));
  } catch (error) {
    throw new HomeUnreachableError(user.name, paths.home, { cause: error });
  }
}

/**
 * Makes `<share>/users/<name>/notebooks` (given to the user when created) and `<share>/team`; throws
 * `ShareUnavailableError` when they cannot be made.
 *
 * @example
 * await prepareShare(paths, '/share', user, { log, asRoot: true });
 */
export async function prepareShare(paths: UserPaths, sharePath: string, user: AgentUser, ctx: LayoutContext): Promise<void> {
  const users = path.join(sharePath, 'users');
  const team = path.join(sharePath, 'team');
  const userDir = path.dirname(paths.shareNotebooks);
  try {
    const share = await lstat(sharePath).catch(() => undefined);
    if (!share) throw new Error('no such directory');
    for (const dir of [users, team]) await mkdir(dir, { recursive: true, mode: 0o755 });
    // Only folders created here are given to the user, with lchown: a link the user put in their place
    // meanwhile is changed itself, never its target.
    for (const dir of [userDir, paths.shareNotebooks]) {
      const created = (await mkdir(dir, { recursive: true, mode: 0o755 })) !== undefined;
      if (created && ctx.asRoot) {
        try {
          await lchown(dir, user.uid, user.gid);
        } catch (error) {
          // Some network shares (sshfs) map ownership on the server side and refuse chown.
          ctx.log.warn({ dir, err: (error as Error).message }, 'cannot give a share folder to its user');
        }
      }
    }
  } catch (error) {
    throw new ShareUnavailableError(sharePath, (error as Error).message, { cause: error });
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
    realDirSync(path.dirname(paths.link), 0o755, ctx);
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
${JUPYTER_ACTIVITY_PY}`;

/**
 * Loaded by notebook 6 on every page (`<config dir>/custom/custom.js`): shows the hub's notice for this server
 * (e.g. "this instance is being drained") as a banner. It reads the user's model from the hub with the login cookie.
 */
export const JUPYTER_CUSTOM_JS = `// Written by the dspool agent; edits are overwritten.
(function () {
  var match = window.location.pathname.match(/^\\/user\\/([^\\/]+)\\//);
  if (!match) return;
  function show(text) {
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
    banner.textContent = 'dspool: ' + text;
  }
  function poll() {
    fetch('/hub/api/users/' + match[1], { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (user) { var s = user && user.servers && user.servers['']; show(s && s.notice); })
      .catch(function () {});
  }
  poll();
  setInterval(poll, 30000);
})();
`;

/**
 * Writes the per-user Jupyter config directory (the user's own, as it may hold Jupyter's nbconfig) with
 * `JUPYTER_CONFIG_PY`. Runs with the user's IDs when the agent is root.
 *
 * @example
 * writeJupyterConfig(paths, user, { log, asRoot: true });
 */
export function writeJupyterConfig(paths: UserPaths, user: AgentUser, ctx: LayoutContext): void {
  asUser(user, ctx, () => {
    realDirSync(path.dirname(paths.jupyterConfigDir), 0o700, ctx);
    realDirSync(paths.jupyterConfigDir, 0o700, ctx);
    const file = path.join(paths.jupyterConfigDir, 'jupyter_notebook_config.py');
    const temp = `${file}.tmp-${process.pid}`;
    writeFileSync(temp, JUPYTER_CONFIG_PY, { mode: 0o644, flag: 'w' });
    renameSync(temp, file);
    realDirSync(path.join(paths.jupyterConfigDir, 'custom'), 0o700, ctx);
    const custom = path.join(paths.jupyterConfigDir, 'custom', 'custom.js');
    writeFileSync(`${custom}.tmp-${process.pid}`, JUPYTER_CUSTOM_JS, { mode: 0o644, flag: 'w' });
    renameSync(`${custom}.tmp-${process.pid}`, custom);
  });
}
