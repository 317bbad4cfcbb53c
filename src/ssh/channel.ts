// Ends a server-side session channel in the order sshd uses: every byte of stdout and stderr, then exit-status
// (or exit-signal), then EOF and CLOSE. ssh2 sends exit-status immediately, so it would otherwise overtake data
// still waiting for window space.
import type { ServerChannel } from 'ssh2';

/** How a session's process ended: an exit code, or the signal name without `SIG` (`TERM`). */
export type ExitReason = { code: number } | { signal: string; coreDumped?: boolean; message?: string };

function written(stream: NodeJS.WritableStream & { writable: boolean }): Promise<void> {
  if (!stream.writable) return Promise.resolve();
  return new Promise((resolve) => {
    try {
      stream.write(Buffer.alloc(0), () => resolve());
    } catch {
      resolve();
    }
  });
}

/**
 * Waits until everything written to `channel` and its stderr went out, sends the exit reason, then ends it.
 *
 * @example
 * child.on('close', (code) => void endChannel(channel, { code: code ?? 255 }));
 */
export async function endChannel(channel: ServerChannel, reason: ExitReason | undefined): Promise<void> {
  const outgoing = (channel as unknown as { outgoing?: { state?: string } }).outgoing;
  if (outgoing?.state !== 'open') return;
  await Promise.all([written(channel), written(channel.stderr as NodeJS.WritableStream & { writable: boolean })]);
  try {
    if (reason !== undefined) {
      if ('code' in reason) channel.exit(reason.code);
      else channel.exit(reason.signal, reason.coreDumped ?? false, reason.message ?? '');
    }
  } catch {
    // closed meanwhile
  }
  channel.end();
}

