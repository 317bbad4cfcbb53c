# dspool fork server: one pre-imported Python process per instance (Debian's /usr/bin/python3 with the notebook
# server and ipykernel already imported, nothing user-specific) that forks users' Jupyter servers on the agent's
# request, so a start skips the ~1 s of imports. Started by the agent (src/agent/forkserver/client.ts) as
#
#     /usr/bin/python3 -I -B -c <bootstrap> <socket path> <padding>
#
# Protocol: JSON lines over a Unix stream socket in a root-only (0700) directory; every peer must also be root
# (SO_PEERCRED), so no user can ask it for anything.
#   control connection  -> {"op": "control"}
#                       <- {"event": "hello", "pid": …, "preloaded": [...]}, then every event below
#   spawn connection    -> {"op": "spawn", "id": "…", "spec": SpawnSpec}   (one request, then it is the child's
#                          stdout+stderr: the agent reads the child's output from it, as from a pipe)
#   events              <- {"event": "spawned", "id", "pid"}
#                          {"event": "ready", "id", "pid", "port"}     the server listens (pushed, not polled)
#                          {"event": "failed", "id", "pid", "message"} the child could not apply the spec
#                          {"event": "exec", "id", "pid", "reason"}   the child exec'd the command instead
#                          {"event": "exit", "id", "pid", "code", "signal"}
#
# The child applies the whole SpawnSpec before any user code runs: joins the cgroups, stdin from /dev/null,
# setgroups/setgid/setuid, umask, a wholly new environment, cwd (after the IDs drop), closes every inherited
# file descriptor, re-seeds `random` and resets `uuid`'s state from os.urandom, rewrites /proc/<pid>/cmdline and
# /proc/<pid>/environ to its own, and then runs the notebook app. Where forking would not give the same program
# the exec path gives (another server command, a user's site-packages shadowing a pre-imported module) the child
# execs the command itself, after the same steps.
#
# Kernels: before the notebook app starts (while the process is single-threaded) the child forks a kernel
# "zygote", already the user's, already pre-imported. The server's kernel provisioner (`dspool-fork`, selected
# here as the default) asks it for kernels over a socketpair; a kernel it cannot fork is exec'd as usual, with
# the reason in the server's log.
import ctypes
import json
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time
import uuid

PRELOAD = (
    'notebook.notebookapp',
    'ipykernel.kernelapp',
    'ipykernel.ipkernel',
    'ipykernel.zmqshell',
    'ipykernel.comm',
    'ipykernel.eventloops',
    'jupyter_client.ioloop',
    'jupyter_client.provisioning',
    'IPython.core.completer',
    # What NotebookApp.initialize and the first kernel start would import otherwise.
    'jinja2.ext',
    'notebook.tree.handlers',
    'notebook.files.handlers',
    'notebook.view.handlers',
    'notebook.notebook.handlers',
    'notebook.nbconvert.handlers',
    'notebook.bundler.handlers',
    'notebook.kernelspecs.handlers',
    'notebook.edit.handlers',
    'notebook.services.api.handlers',
    'notebook.services.config.handlers',
    'notebook.services.kernels.handlers',
    'notebook.services.contents.handlers',
    'notebook.services.sessions.handlers',
    'notebook.services.nbconvert.handlers',
    'notebook.services.kernelspecs.handlers',
    'notebook.services.security.handlers',
    'notebook.services.shutdown',
    'notebook.terminal',
    'notebook.terminal.handlers',
    'terminado',
    'jupyter_client.asynchronous',
    'jupyter_client.blocking',
    'ipykernel.ipkernel',
    'ipykernel.heartbeat',
    'ipykernel.iostream',
    'ipykernel.parentpoller',
    'ipykernel.kernelspec',
)

#: The directory this file lives in: removed from children's sys.path.
HERE = os.path.dirname(os.path.abspath(__file__))
#: The status pipe's fd number in a child (ready/failed lines for the fork server).
STATUS_FD = 3
_SO_PEERCRED_FORMAT = '3i'


# ---------------------------------------------------------------------------------------------------------------
# Child side: applying a SpawnSpec


def reseed():
    """Fresh random state in every child: nothing a user sees is predictable from another user's process."""
    random.seed(os.urandom(32))
    # uuid1's clock sequence and last timestamp; uuid4 reads os.urandom itself.
    if hasattr(uuid, '_last_timestamp'):
        uuid._last_timestamp = None
    try:
        import numpy.random  # noqa: only when something pre-imported it

        numpy.random.seed(int.from_bytes(os.urandom(4), 'little'))
    except Exception:
        pass


def _proc_stat_fields():
    with open('/proc/self/stat', 'rb') as handle:
        data = handle.read()
    return data[data.rindex(b')') + 2 :].split()


def retitle(argv, env):
    """
    Makes /proc/self/cmdline and /proc/self/environ show this child's own argv and environment (not the fork
    server's), by writing them over the original argv and environment areas of the stack, as setproctitle does.
    `ps`, the agent's leftover reaper and the local provider read these. Skipped when they do not fit.
    """
    try:
        fields = _proc_stat_fields()
        arg_start, arg_end, env_start, env_end = (int(fields[i]) for i in (45, 46, 47, 48))
    except (OSError, ValueError, IndexError):
        return
    for start, end, items in ((arg_start, arg_end, argv), (env_start, env_end, ['%s=%s' % kv for kv in env.items()])):
        size = end - start
        data = b''.join(os.fsencode(item) + b'\0' for item in items)
        if size <= 0 or len(data) > size:
            continue
        ctypes.memmove(start, data + b'\0' * (size - len(data)), size)


def fix_sys_path(env):
    """sys.path as a plain `python3` run by this user would have it: PYTHONPATH first, their user site-packages."""
    import site

    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != HERE]
    extra = [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
    sys.path[0:0] = extra
    site.ENABLE_USER_SITE = True
    site.USER_BASE = None
    site.USER_SITE = None
    user_site = site.getusersitepackages()
    if os.path.isdir(user_site) and user_site not in sys.path:
        first_system = next((i for i, p in enumerate(sys.path) if p.endswith(('dist-packages', 'site-packages'))), len(sys.path))
        sys.path.insert(first_system, user_site)


def shadowed(env):
    """The first pre-imported top-level module that the user's own paths (PYTHONPATH, user site) would replace."""
    import site

    roots = {name.split('.')[0] for name in sys.modules}
    places = [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p] + [site.getusersitepackages()]
    for place in places:
        try:
            entries = os.listdir(place)
        except OSError:
            continue
        for entry in entries:
            name = entry[:-3] if entry.endswith('.py') else entry
            if name in roots and (entry.endswith('.py') or os.path.isdir(os.path.join(place, entry))):
                return '%s in %s' % (name, place)
    return None


def close_fds(keep_status):
    """Closes every inherited descriptor but stdin/stdout/stderr (and the status pipe at STATUS_FD)."""
    os.closerange(STATUS_FD + 1 if keep_status else STATUS_FD, 1 << 20)


#: The fork server's pid (children check their parent against it).
FORK_SERVER_PID = os.getpid()
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4


def prctl(option, value):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        raise OSError(ctypes.get_errno(), 'prctl(%d, %d)' % (option, value))


def set_parent_death_signal(signum):
    prctl(_PR_SET_PDEATHSIG, int(signum))


def send_status(kind, **fields):
    try:
        os.write(STATUS_FD, (json.dumps(dict(fields, kind=kind)) + '\n').encode())
    except OSError:
        pass


def apply_spec(spec, conn_fd, status_fd):
    """Everything of the SpawnSpec but the program itself. Runs as root in the fresh child."""
    for name in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(name, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    import atexit

    atexit._clear()  # what the fork server's imports registered is not the child's to run
    for procs in spec.get('cgroupProcs', []):
        with open(procs, 'w') as handle:
            handle.write(str(os.getpid()))
    null = os.open('/dev/null', os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(conn_fd, 1)
    os.dup2(conn_fd, 2)
    os.dup2(status_fd, STATUS_FD)
    os.set_inheritable(STATUS_FD, False)
    close_fds(keep_status=True)
    if spec.get('gid') is not None:
        os.setgroups([int(g) for g in spec.get('groups', [spec['gid']])])
        os.setresgid(int(spec['gid']), int(spec['gid']), int(spec['gid']))
    if spec.get('uid') is not None:
        os.setresuid(int(spec['uid']), int(spec['uid']), int(spec['uid']))
    # Until it is ready the child dies with the fork server (whose death makes the agent exec the start instead):
    # set after the IDs change, which clears it. The parent may have died already.
    set_parent_death_signal(signal.SIGKILL)
    # Changing IDs without exec leaves the process non-dumpable (its /proc files root's, no ptrace by the user):
    # an exec'd server would be the user's in full, so this one is too. It holds nothing of root's.
    prctl(_PR_SET_DUMPABLE, 1)
    if os.getppid() != FORK_SERVER_PID:
        os._exit(128 + signal.SIGKILL)
    os.umask(int(spec.get('umask', 0o077)))
    env = {str(k): str(v) for k, v in spec['env'].items()}
    os.environ.clear()
    os.environ.update(env)
    os.chdir(spec['cwd'])
    reseed()
    sys.stdout = open(1, 'w', buffering=1, closefd=False)
    sys.stderr = open(2, 'w', buffering=1, closefd=False)
    return env


def exec_spec(spec, why):
    """The exec path from inside the child (the spec is already applied): the same program, not forked."""
    sys.stderr.write('dspool: exec instead of fork: %s\n' % why)
    sys.stderr.flush()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    set_parent_death_signal(0)  # an exec'd server is not tied to the fork server
    send_status('exec', reason=why)  # no readiness will be pushed: the agent polls, as for any exec'd server
    os.close(STATUS_FD)
    os.execve(spec['file'], [spec['file']] + list(spec['args']), dict(os.environ))


def is_notebook_command(spec):
    """Forking gives the same program only for Debian's notebook 6 entry point run by this very Python."""
    try:
        with open(spec['file'], 'rb') as handle:
            head = handle.read(4096)
    except OSError:
        return False
    first = head.split(b'\n', 1)[0]
    return (
        first.startswith(b'#!')
        and os.path.realpath(first[2:].strip().split()[0].decode()) == os.path.realpath(sys.executable)
        and b"'console_scripts', 'jupyter-notebook'" in head
    )


def child_main(spec, conn_fd, status_fd, python_code=None):
    """
    The forked child: apply the spec, then become the notebook server (never returns). With `python_code` (tests
    and diagnostics; only root can ask) it runs that code instead, in the forked process, after the same steps.
    """
    code = 127
    try:
        env = apply_spec(spec, conn_fd, status_fd)
        argv = [spec['file']] + list(spec['args'])
        fix_sys_path(env)
        if python_code is not None:
            retitle([sys.executable] + argv, env)
            sys.argv = list(argv)
            exec(compile(python_code, '<dspool-forked>', 'exec'), {'__name__': '__main__', 'send_status': send_status})
            raise SystemExit(0)
        if not is_notebook_command(spec):
            exec_spec(spec, '%s is not the notebook 6 entry point of %s' % (spec['file'], sys.executable))
        shadow = shadowed(env)
        if shadow:
            exec_spec(spec, 'the user\'s own %s replaces a pre-imported module' % shadow)
        sys.path.insert(0, os.path.dirname(spec['file']))  # a script's own folder comes first, as when exec'd
        retitle([sys.executable] + argv, env)
        code = run_notebook(argv)
    except SystemExit as stop:
        code = exit_code(stop)
    except BaseException as error:  # noqa: the child must never return into the fork server's loop
        try:
            message = '%s: %s' % (type(error).__name__, error)
            send_status('failed', message=message)
            os.write(2, ('dspool fork server child: %s\n' % message).encode())
        except BaseException:
            pass
    finally:
        leave(code)


def exit_code(stop):
    """The process exit code a `SystemExit` stands for, as the interpreter would compute it."""
    return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)


def leave(code):
    """Ends a forked child as an interpreter would end (its own exit functions, flushed output), never returning."""
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code)


def run_notebook(argv):
    """Runs notebook 6's NotebookApp with `argv`, telling the fork server once it listens; returns the exit code."""
    zygote = KernelZygote.start()
    install_provisioner(zygote)
    sys.argv = list(argv)
    from notebook.notebookapp import NotebookApp
    from tornado.ioloop import IOLoop

    app = NotebookApp.instance()
    app.initialize(argv[1:])

    def ready():
        port = app.port
        try:
            port = next(iter(app.http_server._sockets.values())).getsockname()[1]
        except Exception:
            pass
        set_parent_death_signal(0)  # ready: from now on the server outlives a crashed fork server
        send_status('ready', port=port)
        os.close(STATUS_FD)

    IOLoop.current().add_callback(ready)
    try:
        app.start()
    finally:
        zygote.close()
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Kernels: a per-server zygote and the `dspool-fork` provisioner


def _send_json(sock, obj):
    sock.sendall((json.dumps(obj) + '\n').encode())


def _recv_json(sock, buffer):
    while b'\n' not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError('closed')
        buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b'\n')
    buffer[:] = rest
    return json.loads(line)


def is_ipykernel_command(cmd):
    """`<this python> -m ipykernel_launcher|ipykernel …`: the only kernel command a fork reproduces."""
    return (
        len(cmd) >= 3
        and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
        and cmd[1] == '-m'
        and cmd[2] in ('ipykernel_launcher', 'ipykernel')
    )


class KernelZygote:
    """The notebook server's side of its kernel zygote (a forked, pre-imported, single-threaded copy of itself)."""

    def __init__(self, pid, sock):
        self.pid = pid
        self.sock = sock
        self.buffer = bytearray()
        self.gone = None  # why it cannot be used any more

    @classmethod
    def start(cls):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                parent.close()
                os.close(STATUS_FD)
                retitle([sys.executable, 'dspool-kernel-zygote'], dict(os.environ))
                zygote_loop(child)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child.close()
        return cls(pid, parent)

    def close(self, timeout=2.0):
        """Ends the zygote with its server and reaps it: it is the server's child, so a zygote still exiting when the
        server exits is left a zombie until whoever adopts it reaps it. Closing its socket ends its loop."""
        self.gone = self.gone or 'the server has stopped'
        try:
            self.sock.close()
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid != 0:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        try:  # a zygote that does not end in time (it never blocks but in its socket read) is ended
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def request(self, message):
        if self.gone:
            raise EOFError(self.gone)
        try:
            _send_json(self.sock, message)
            return _recv_json(self.sock, self.buffer)
        except (OSError, EOFError, ValueError) as error:
            self.gone = 'the kernel zygote is gone (%s)' % error
            raise EOFError(self.gone)


def zygote_loop(sock):
    """Serves kernel launches until the notebook server closes its end. Single-threaded; children are reaped."""
    buffer = bytearray()
    codes = {}
    while True:
        try:
            message = _recv_json(sock, buffer)
        except (EOFError, OSError):
            return
        while True:  # reap what has ended meanwhile
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            codes[pid] = os.waitstatus_to_exitcode(status)
        if message.get('op') == 'launch':
            try:
                pid = fork_kernel(message['cmd'], message['env'], message['cwd'], sock)
                _send_json(sock, {'pid': pid})
            except Exception as error:
                _send_json(sock, {'error': '%s: %s' % (type(error).__name__, error)})
        elif message.get('op') == 'wait':
            pid = int(message['pid'])
            if pid not in codes:
                try:
                    codes[pid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
                except ChildProcessError:
                    codes[pid] = None
            _send_json(sock, {'code': codes.pop(pid)})


def fork_kernel(cmd, env, cwd, zygote_sock):
    """Forks one kernel: its own session, environment, cwd, descriptors and random state, then ipykernel."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        zygote_sock.close()
        os.setsid()
        env = {str(k): str(v) for k, v in env.items()}
        os.environ.clear()
        os.environ.update(env)
        if cwd:
            os.chdir(cwd)
        null = os.open('/dev/null', os.O_RDONLY)
        os.dup2(null, 0)
        os.closerange(3, 1 << 20)
        reseed()
        fix_sys_path(env)
        shadow = shadowed(env)
        if shadow:
            sys.stderr.write('dspool: exec instead of fork for a kernel: the user\'s own %s replaces a pre-imported module\n' % shadow)
            sys.stderr.flush()
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execve(cmd[0], cmd, env)
        sys.path.insert(0, os.getcwd())  # `python3 -m` puts the working directory first
        retitle(cmd, env)
        sys.argv = [cmd[2]] + list(cmd[3:])
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=list(cmd[3:]))
        code = 0
    except SystemExit as stop:
        code = exit_code(stop)
    except BaseException as error:  # noqa: never return into the zygote's loop
        try:
            os.write(2, ('dspool: forked kernel failed: %s: %s\n' % (type(error).__name__, error)).encode())
        except BaseException:
            pass
    finally:
        leave(code)


class ForkedKernel:
    """A Popen-like handle on a kernel forked by the zygote (not our child: watched through a pidfd)."""

    stdin = stdout = stderr = None

    def __init__(self, zygote, pid):
        self.zygote = zygote
        self.pid = pid
        self.returncode = None
        try:
            self.pidfd = os.pidfd_open(pid)
        except OSError:
            self.pidfd = None

    def poll(self):
        if self.returncode is not None:
            return self.returncode
        if self.pidfd is not None:
            import select

            if not select.select([self.pidfd], [], [], 0)[0]:
                return None
        elif _alive(self.pid):
            return None
        return self._collect()

    def _collect(self):
        try:
            code = self.zygote.request({'op': 'wait', 'pid': self.pid}).get('code')
        except EOFError:
            code = None
        self.returncode = -9 if code is None else code
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return self.returncode

    def wait(self, timeout=None):
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum):
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            return handle.read().rsplit(b')', 1)[1][1:2] != b'Z'
    except OSError:
        return False


def install_provisioner(zygote):
    """Registers the `dspool-fork` kernel provisioner and makes it the default one of this server."""
    from jupyter_client.provisioning.factory import KernelProvisionerFactory
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class ForkProvisioner(LocalProvisioner):
        """Forks Python kernels from the server's zygote; execs any other kernel, or when the zygote is gone."""

        async def launch_kernel(self, cmd, **kwargs):
            reason = None
            if not is_ipykernel_command(cmd):
                reason = 'not an ipykernel command of %s' % sys.executable
            elif zygote.gone:
                reason = zygote.gone
            elif kwargs.get('stdin') is not None or kwargs.get('stdout') is not None or kwargs.get('stderr') is not None:
                reason = 'custom standard streams'
            if reason is None:
                env = dict(kwargs.get('env') or os.environ)
                env['JPY_PARENT_PID'] = str(os.getpid())
                try:
                    reply = zygote.request({'op': 'launch', 'cmd': list(cmd), 'env': env, 'cwd': kwargs.get('cwd') or os.getcwd()})
                except EOFError as error:
                    reason = str(error)
                else:
                    if 'pid' in reply:
                        self.process = ForkedKernel(zygote, int(reply['pid']))
                        self.pid = self.pgid = self.process.pid
                        self.log.info('dspool: kernel forked (pid %s)', self.pid)
                        return self.connection_info
                    reason = reply.get('error', 'no answer')
            self.log.warning('dspool: kernel exec\'d instead of forked: %s', reason)
            return await super().launch_kernel(cmd, **kwargs)

    class EntryPoint:
        name = 'dspool-fork'

        @staticmethod
        def load():
            return ForkProvisioner

    KernelProvisionerFactory.provisioners['dspool-fork'] = EntryPoint()
    # The trait's dynamic default (not an environment variable, which every kernel would inherit); a kernelspec
    # or config naming another provisioner still wins.
    KernelProvisionerFactory._trait_default_generators['default_provisioner_name'] = lambda self: 'dspool-fork'


# ---------------------------------------------------------------------------------------------------------------
# The fork server itself


class Server:
    def __init__(self, path):
        self.path = path
        self.selector = selectors.DefaultSelector()
        self.controls = []
        self.children = {}  # pid -> {'id', 'status': fd, 'buffer'}
        self.uid = os.geteuid()

    def emit(self, event):
        line = (json.dumps(event) + '\n').encode()
        for conn in list(self.controls):
            try:
                conn.setblocking(True)
                conn.sendall(line)
            except OSError:
                self.drop_control(conn)

    def drop_control(self, conn):
        if conn in self.controls:
            self.controls.remove(conn)
            self.selector.unregister(conn)
            conn.close()
        if not self.controls:
            raise SystemExit(0)  # the agent is gone: so is its fork server

    def serve(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        listener.bind(self.path)
        os.umask(old)
        listener.listen(128)
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, ('accept', None))
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # Nothing to clean up (the agent removes the socket); its children are the agent's to stop.
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        self.selector.register(wake_r, selectors.EVENT_READ, ('wake', None))
        parent = os.getppid()
        sys.stdout.write(json.dumps({'listening': self.path, 'pid': os.getpid()}) + '\n')
        sys.stdout.flush()
        while True:
            if os.getppid() != parent:
                return  # the agent died without closing its connection
            for key, _ in self.selector.select(timeout=1.0):
                kind, data = key.data
                if kind == 'accept':
                    self.accept(listener)
                elif kind == 'wake':
                    try:
                        os.read(wake_r, 4096)
                    except BlockingIOError:
                        pass
                    self.reap()
                elif kind == 'conn':
                    self.on_conn(key.fileobj, data)
                elif kind == 'status':
                    self.on_status(key.fd, data)

    def accept(self, listener):
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        pid, uid, gid = struct.unpack(_SO_PEERCRED_FORMAT, conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(_SO_PEERCRED_FORMAT)))
        if uid != self.uid:
            conn.close()  # only the agent's own user (root) may ask
            return
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, ('conn', bytearray()))

    def on_conn(self, conn, buffer):
        try:
            chunk = conn.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b''
        if conn in self.controls:
            if not chunk:
                self.drop_control(conn)
            return
        if not chunk:
            self.selector.unregister(conn)
            conn.close()
            return
        buffer.extend(chunk)
        if b'\n' not in buffer:
            return
        line = bytes(buffer).split(b'\n', 1)[0]
        try:
            request = json.loads(line)
        except ValueError:
            request = {}
        op = request.get('op')
        if op == 'control':
            self.controls.append(conn)
            conn.setblocking(True)
            conn.sendall((json.dumps({'event': 'hello', 'pid': os.getpid(), 'preloaded': list(PRELOAD)}) + '\n').encode())
            return
        self.selector.unregister(conn)
        if op == 'spawn':
            self.spawn(request, conn)
        conn.close()

    def spawn(self, request, conn):
        ident = str(request.get('id', ''))
        spec = request.get('spec')
        if not isinstance(spec, dict) or not all(k in spec for k in ('file', 'args', 'env', 'cwd')):
            self.emit({'event': 'failed', 'id': ident, 'pid': None, 'message': 'bad spawn request: a spec needs file, args, env and cwd'})
            return
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(status_r)
            code = request.get('code')
            child_main(spec, conn.fileno(), status_w, code if isinstance(code, str) else None)
        os.close(status_w)
        os.set_blocking(status_r, False)
        self.children[pid] = {'id': ident, 'status': status_r}
        self.selector.register(status_r, selectors.EVENT_READ, ('status', {'pid': pid, 'id': ident, 'buffer': bytearray()}))
        self.emit({'event': 'spawned', 'id': ident, 'pid': pid})

    def on_status(self, fd, data):
        """Reads a child's status pipe and forwards what it said: True read something, None nothing yet, False EOF."""
        pid, ident = data['pid'], data['id']
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return None
        except OSError:
            chunk = b''
        data['buffer'].extend(chunk)
        while b'\n' in data['buffer']:
            line, _, rest = bytes(data['buffer']).partition(b'\n')
            data['buffer'][:] = rest
            try:
                status = json.loads(line)
            except ValueError:
                continue
            kind = status.pop('kind', None)
            if kind == 'ready':
                self.emit(dict(status, event='ready', id=ident, pid=pid))
            elif kind == 'failed':
                self.emit({'event': 'failed', 'id': ident, 'pid': pid, 'message': str(status.get('message', ''))})
            elif kind == 'exec':
                self.emit({'event': 'exec', 'id': ident, 'pid': pid, 'reason': str(status.get('reason', ''))})
        if chunk:
            return True
        self.selector.unregister(fd)
        os.close(fd)
        if pid in self.children:
            self.children[pid]['status'] = None
        return False

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            fd = child['status']
            if fd is not None:
                # What it said before it died is still in the pipe (its write end is closed now).
                # Never blocks: a process it forked may still hold the write end.
                data = self.selector.get_key(fd).data[1]
                while self.on_status(fd, data):
                    pass
                if child['status'] is not None:
                    self.selector.unregister(fd)
                    os.close(fd)
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            sig = signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else None
            self.emit({'event': 'exit', 'id': child['id'], 'pid': pid, 'code': code, 'signal': sig})


def preload():
    """Imports what every server and kernel would import (the point of this process); a missing one is skipped."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as error:  # another notebook version lays its modules out differently
            sys.stderr.write('dspool fork server: not preloaded: %s (%s)\n' % (name, error))


def main(argv):
    global FORK_SERVER_PID
    if len(argv) < 1:
        sys.stderr.write('usage: dspool_forkserver <socket path>\n')
        return 2
    FORK_SERVER_PID = os.getpid()
    preload()
    # Nothing of the fork server's own start may be shared: children re-seed anyway.
    try:
        Server(argv[0]).serve()
    except SystemExit:
        pass
    return 0
