// The part of every server's Jupyter config that tells work from traffic (idle = "no work", never "no traffic").
// Notebook 6's own `last_activity` moves with any IOPub message (a reconnecting tab's kernel_info included) and a
// terminal's with any output, so the agent cannot use it. This patch adds to the kernels and terminals API models:
// - kernels: `dspool_executing` (code a person sent is running) and `dspool_last_work` (last message caused by an
//   `execute_request` or a widget `comm_msg`);
// - terminals: `dspool_foreground` (the pty's foreground process group is not the shell's: a job runs) and
//   `dspool_last_input` (last keystrokes).
// Servers without notebook 6's classes (JupyterLab, jupyter_server) skip it; the agent then falls back to
// `execution_state`.

/** Appended to `JUPYTER_CONFIG_PY`. */
export const JUPYTER_ACTIVITY_PY = `
# Work, not traffic: what the dspool agent reads to decide whether this server is idle.
def _dspool_activity():
    import os
    from notebook._tz import utcnow, isoformat
    from notebook.services.kernels.kernelmanager import MappingKernelManager
    from notebook.terminal.handlers import TermSocket
    from notebook.terminal.terminalmanager import TerminalManager
    from jupyter_client.session import Session
    if getattr(MappingKernelManager, '_dspool_activity', False):
        return
    work_parents = ('execute_request', 'comm_msg')

    original_watch = MappingKernelManager.start_watching_activity
    def start_watching_activity(self, kernel_id):
        original_watch(self, kernel_id)
        kernel = self._kernels[kernel_id]
        kernel.dspool_executing = False
        kernel.dspool_last_work = None
        stream = kernel.connect_iopub()
        kernel._dspool_stream = stream
        session = Session(config=kernel.session.config, key=kernel.session.key)
        def record(msg_list):
            # Headers only: the content (outputs can be large) is unpacked for status messages alone.
            try:
                _idents, fed = session.feed_identities(msg_list)
                msg = session.deserialize(fed, content=False)
            except Exception:
                return
            parent = (msg.get('parent_header') or {}).get('msg_type')
            if parent not in work_parents:
                return
            kernel.dspool_last_work = utcnow()
            if msg['header']['msg_type'] == 'status' and parent == 'execute_request':
                try:
                    content = session.unpack(msg['content'])
                except Exception:
                    return
                kernel.dspool_executing = content.get('execution_state') == 'busy'
        stream.on_recv(record)
    MappingKernelManager.start_watching_activity = start_watching_activity

    original_shutdown = MappingKernelManager.shutdown_kernel
    def shutdown_kernel(self, kernel_id, now=False, restart=False):
        kernel = self._kernels.get(kernel_id)
        stream = getattr(kernel, '_dspool_stream', None)
        if stream is not None and not restart:
            try:
                stream.close()
            except Exception:
                pass
        return original_shutdown(self, kernel_id, now=now, restart=restart)
    MappingKernelManager.shutdown_kernel = shutdown_kernel

    original_kernel_model = MappingKernelManager.kernel_model
    def kernel_model(self, kernel_id):
        model = original_kernel_model(self, kernel_id)
        kernel = self._kernels[kernel_id]
        model['dspool_executing'] = bool(getattr(kernel, 'dspool_executing', False))
        last = getattr(kernel, 'dspool_last_work', None)
        model['dspool_last_work'] = isoformat(last) if last else None
        return model
    MappingKernelManager.kernel_model = kernel_model

    original_on_message = TermSocket.on_message
    def on_message(self, message):
        if isinstance(message, str) and message.startswith('["stdin"'):
            terminal = getattr(self, 'terminal', None)
            if terminal is not None:
                terminal.dspool_last_input = utcnow()
        return original_on_message(self, message)
    TermSocket.on_message = on_message

    original_terminal_model = TerminalManager.get_terminal_model
    def get_terminal_model(self, name):
        model = original_terminal_model(self, name)
        term = self.terminals[name]
        foreground = False
        try:
            proc = term.ptyproc
            foreground = os.tcgetpgrp(proc.fd) != proc.pid
        except Exception:
            pass
        model['dspool_foreground'] = foreground
        last = getattr(term, 'dspool_last_input', None)
        model['dspool_last_input'] = isoformat(last) if last else None
        return model
    TerminalManager.get_terminal_model = get_terminal_model
    MappingKernelManager._dspool_activity = True

try:
    _dspool_activity()
except Exception as error:
    import sys
    print('dspool: activity patch not applied (the agent falls back to execution_state): %r' % (error,), file=sys.stderr)
`;
