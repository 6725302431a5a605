/**
 * The Terminal tab's stream (issue 11): a WebSocket carrying an SSH session on a pty (node-pty over
 * the system's OpenSSH client, main/services/terminal/). Started when a client attaches to a
 * `terminal` ticket, ended when it goes away.
 *
 * Wire format (pty-session.ts `handleTerminalMessage`): binary frames from the client are
 * keystrokes, a text frame is `{"type":"resize","cols":N,"rows":N}`; the session's output goes out as
 * binary frames. While the guest's sshd is not up yet (first boot), a line saying so is sent as
 * output, and keystrokes typed meanwhile (up to 64 KiB) are delivered once the session starts. The socket closes (1000) with "ssh exited with N" when the session ends, or (1011) with
 * the reason it could not start.
 */
import type { RawData, WebSocket } from 'ws';
import type { VmService } from '../common/contract';
import { shellArg } from '../common/shell-arg';
import type { Layout } from '../services/paths';
import { waitForSshReady } from '../services/provisioning/ssh-ready';
import { liveForwardsOf, sshForwardOf } from '../services/sandbox/ssh-forward';
import { buildSshCommand } from '../services/terminal/ssh-command';
import { handleTerminalMessage, startPtySession, type PtySession } from '../services/terminal/pty-session';

/** How long a Terminal waits for a booting guest's sshd. */
const TERMINAL_SSH_WAIT_MS = 15 * 60_000;
const WS_OPEN = 1;

export interface TerminalStreamDeps {
  readonly layout: Layout;
  readonly vms: Pick<VmService, 'get'>;
  readonly log?: (line: string) => void;
}

/** A running terminal stream (for the bridge's bookkeeping). */
export interface TerminalStream {
  close(code: number, reason: string): void;
}

/** Takes over `ws` for VM `vmId`'s terminal. */
export function attachTerminal(ws: WebSocket, vmId: string, deps: TerminalStreamDeps, onClosed: () => void): TerminalStream {
  let session: PtySession | null = null;
  let closed = false;
  let pending: { cols: number; rows: number } = { cols: 80, rows: 24 };
  /** Keystrokes typed before the session exists (while sshd comes up), delivered once it does. */
  const early: Buffer[] = [];
  let earlyBytes = 0;
  const abort = new AbortController();
  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    abort.abort();
    session?.kill();
    if (ws.readyState === WS_OPEN) ws.close(code, reason.slice(0, 123));
    onClosed();
  };
  const say = (text: string) => {
    if (ws.readyState === WS_OPEN) ws.send(Buffer.from(`\r\n\x1b[2m${text}\x1b[0m\r\n`, 'utf8'), { binary: true });
  };
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (session) {
      const why = handleTerminalMessage(session, buf, isBinary);
      if (why) deps.log?.(`terminal ${vmId.slice(0, 8)}: ${why}`);
    } else if (isBinary) {
      if (earlyBytes + buf.length <= 64 * 1024) {
        early.push(buf);
        earlyBytes += buf.length;
      }
    } else {
      // A resize before the session exists sets its first size.
      try {
        const m = JSON.parse(buf.toString('utf8')) as { type?: string; cols?: number; rows?: number };
        if (m.type === 'resize' && Number.isInteger(m.cols) && Number.isInteger(m.rows) && m.cols! >= 1 && m.rows! >= 1 && m.cols! <= 1000 && m.rows! <= 500) {
          pending = { cols: m.cols!, rows: m.rows! };
        }
      } catch {
        // ignored, as handleTerminalMessage would
      }
    }
  });
  ws.on('close', () => finish(1000, 'closed'));
  ws.on('error', () => finish(1011, 'error'));

  void (async () => {
    const vm = await deps.vms.get(vmId);
    const ci = vm.config?.cloudInit;
    if (!ci) throw new Error(`"${vm.name}" was not created from a cloud image: it has no SSH access. Use its serial console.`);
    if (vm.state === 'paused') throw new Error(`"${vm.name}" is paused. Resume it first.`);
    if (vm.state !== 'running') throw new Error(`"${vm.name}" is ${vm.state}. Start it first.`);
    // The forwards as they are now (a forward to 22 may have been added or moved during the run).
    const fwd = sshForwardOf(await liveForwardsOf(deps.layout.runtime(vmId).dir, vm));
    if (!fwd) throw new Error(`No host port forwards to "${vm.name}"'s SSH port 22. Add a forward to guest port 22: vivarium forward add ${shellArg(vm.name)} tcp:PORT:22`);
    const hint = setTimeout(() => say(`Waiting for ${vm.name}'s SSH server…`), 1000);
    try {
      await waitForSshReady({
        serialLog: deps.layout.bundle(vmId).serialLog,
        knownHostsFile: ci.knownHostsFile,
        port: fwd.hostPort,
        timeoutMs: TERMINAL_SSH_WAIT_MS,
        signal: abort.signal,
      });
    } finally {
      clearTimeout(hint);
    }
    if (closed) return;
    const s = startPtySession(buildSshCommand({ user: ci.user, port: fwd.hostPort, identityFile: ci.identityFile, knownHostsFile: ci.knownHostsFile }, { tty: true }), pending);
    session = s;
    for (const b of early.splice(0)) s.write(b);
    s.onData((d) => {
      if (ws.readyState === WS_OPEN) ws.send(d, { binary: true });
    });
    const exit = await s.done;
    finish(1000, `ssh exited with ${exit.exitCode}`);
  })().catch((e: unknown) => {
    const why = e instanceof Error ? e.message : String(e);
    say(why);
    finish(1011, why);
  });
  return { close: finish };
}
