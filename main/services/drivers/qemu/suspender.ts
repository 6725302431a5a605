/**
 * Suspend to disk and resume for the QEMU driver (issue 10; qemu-notes §3 "Save state / suspend to
 * file").
 *
 * The state travels over a unix socket in the VM's runtime folder, with Node on the other end:
 *  - suspend: Node listens, QMP `stop` + `migrate unix:<sock>`; Node writes the stream to
 *    `<bundle>/suspend.state.part`, fsyncs and renames it to `suspend.state` once QEMU reports the
 *    migration completed, records it in config.json (`suspended`), then quits QEMU.
 *  - resume: the same command line plus `-incoming unix:<sock>`: QEMU listens, Node streams the file
 *    in, QEMU runs on from where it was once the migration completes.
 * Neither side forks, so QEMU keeps `-sandbox spawn=deny` (the `exec:` transport would need it
 * dropped on 7.2), nothing listens on TCP, and the same code serves QEMU 7.2 and 8.2+ (`file:`
 * would only be another way to reach the same stream).
 *
 * The disks are not in the state: between suspend and resume nothing may write them (snapshots and
 * edits are refused while `suspended` is set). The saved state only fits the command line it came
 * from, so a resume first compares the command line's hash.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { errors } from '../../../common/errors';
import type { VmConfig } from '../../../common/models/vm-config';
import { serializeConfig } from '../../bundles/bundle-store';
import type { Layout } from '../../paths';
import { writeFileAtomicAsync } from '../../paths';
import { QemuIds, VDAGENT_PORT_NAME } from '../../qemu/argv';
import type { MigrationMonitor, Monitor, SnapshotJobMonitor } from '../../qemu/monitor';
import { sleep } from '../../qemu/process';
import { QmpError } from '../../qemu/qmp';
import type { RuntimeRecord } from '../../runtime/records';
import { writeStopRequestAsync } from '../../runtime/records';
import { acquireStartLockAsync } from '../../runtime/start-lock';
import type { DriverVm, SnapshotProgress } from '../driver';

export const SUSPEND_FILE = 'suspend.state';
const MIGRATE_SOCKET = 'migrate.sock';
/** How long a suspend or resume may take before Vivarium gives up (a large guest on a slow disk). */
const MIGRATION_TIMEOUT_MS = 30 * 60_000;

/**
 * The hash of a command line as far as a saved state cares: without its `-incoming` part (a resumed
 * VM can be suspended again), without `-S` (how it started, not what it is) and without the host ports of user-mode forwards
 * (`hostfwd=tcp:127.0.0.1:PORT-:22` hashes as `hostfwd=tcp:127.0.0.1:*-:22`). QEMU's migration
 * needs the same guest-visible machine on both sides (devices, memory, the guest side of each
 * forward); which host port slirp listens on is the host's business, and a sandbox's SSH forward
 * gets a free port afresh at every start (sandbox/ssh-forward.ts), so a resume may well get another.
 */
export function argvHash(argv: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-incoming') {
      i++;
      continue;
    }
    if (argv[i] === '-S') continue; // started paused (a revert to a memory snapshot): a run state, not the machine
    out.push(argv[i]!.replace(/(hostfwd=(?:tcp|udp):[^:,]*:)\d+-/g, '$1*-'));
  }
  return createHash('sha256').update(JSON.stringify(out)).digest('hex');
}

export interface SuspenderDeps {
  readonly layout: Layout;
  readonly monitor: (id: string) => Promise<Monitor & MigrationMonitor & SnapshotJobMonitor>;
  readonly waitForExit: (pid: number, id: string, ms: number) => Promise<boolean>;
}

async function followMigration(m: MigrationMonitor, what: string, progress?: SnapshotProgress): Promise<void> {
  const started = Date.now();
  const deadline = started + MIGRATION_TIMEOUT_MS;
  for (;;) {
    const st = await m.queryMigrate();
    if (st.totalBytes > 0) progress?.(Math.min(1, st.transferredBytes / st.totalBytes));
    if (st.status === 'completed') return;
    if (st.status === 'failed' || st.status === 'cancelled') throw errors.qemu(`QEMU could not ${what}: ${st.error ?? st.status}.`);
    if (Date.now() > deadline) throw errors.timeout(`QEMU did not ${what} within ${MIGRATION_TIMEOUT_MS / 60_000} minutes.`);
    await sleep(Date.now() - started < 2000 ? 10 : 50); // a small guest is done within a second
  }
}

/** Saves the running VM's whole state into its bundle and ends QEMU. */
export async function suspendVm(deps: SuspenderDeps, vm: DriverVm, record: RuntimeRecord, progress?: SnapshotProgress): Promise<void> {
  const bundle = deps.layout.bundle(vm.id);
  const rt = deps.layout.runtime(vm.id);
  const sock = `${rt.dir}/${MIGRATE_SOCKET}`;
  const part = bundle.file(`${SUSPEND_FILE}.part`);
  const m = await deps.monitor(vm.id);
  await fsp.rm(sock, { force: true });
  const server = net.createServer();
  // Settles to the copy's error or null, so a failure while the migration still runs is not an
  // unhandled rejection (which ends a Node process); it is thrown once the migration has been followed.
  let wrote: Promise<Error | null> | null = null;
  server.on('connection', (conn) => {
    server.close();
    wrote = pipeline(conn, fs.createWriteStream(part, { mode: 0o600 })).then(() => null, (e: unknown) => e as Error);
  });
  await new Promise<void>((resolve, reject) => server.listen(sock, resolve).once('error', reject));
  // QEMU gone under the suspend (Force Off, killed, crashed): every pending command fails with
  // QmpClient's lost-connection error (isQmpLost); the person gets a sentence naming the suspend instead.
  // A refusal ('"migrate" failed: …', a device that cannot be migrated) is QEMU's reason without the command's name.
  const ended = (e: unknown): unknown =>
    m.closed
      ? errors.state(`"${vm.config.name}" stopped (forced off, or QEMU ended) while it was being suspended: the suspend did not finish and nothing was saved, so its next start boots afresh.`, { qemuEnded: true, job: 'suspend' })
      : e instanceof QmpError
        ? errors.qemu(`QEMU could not suspend "${vm.config.name}": ${e.desc}`, { class: e.errorClass })
        : e;
  let wasRunning = false;
  let hadClipboard = false;
  try {
    wasRunning = (await m.queryStatus()).running;
    // The clipboard channel blocks migration (./snapshotter.ts withoutClipboard): the state is saved
    // without it, and a resume starts QEMU without it and plugs it back (resumePlan).
    hadClipboard = await m.hasChardev(QemuIds.clipboardChardev);
  } catch (e) {
    server.close();
    await fsp.rm(sock, { force: true });
    throw ended(e);
  }
  try {
    await m.migrateSetMaxBandwidth(Number.MAX_SAFE_INTEGER);
    if (wasRunning) await m.stop();
    if (hadClipboard) await m.unplugSerialPort(QemuIds.clipboardPort, QemuIds.clipboardChardev);
    await m.migrate(`unix:${sock}`);
    await followMigration(m, `suspend "${vm.config.name}"`, progress);
    if (!wrote) throw errors.qemu(`QEMU did not send the state of "${vm.config.name}".`);
    const writeError = await wrote;
    if (writeError) throw writeError;
    const fh = await fsp.open(part, 'r+');
    await fh.sync();
    await fh.close();
  } catch (e) {
    server.close();
    await fsp.rm(part, { force: true });
    if (hadClipboard) await m.plugVdagentPort(QemuIds.clipboardChardev, QemuIds.clipboardPort, 'vser0.0', VDAGENT_PORT_NAME).catch(() => undefined);
    if (wasRunning) await m.cont().catch(() => undefined);
    throw ended(e);
  } finally {
    await fsp.rm(sock, { force: true });
  }
  const { size } = await fsp.stat(part);
  await fsp.rename(part, bundle.file(SUSPEND_FILE));
  const config: VmConfig = {
    ...vm.config,
    // A VM paused when suspended comes back paused (VirtualBox keeps a saved state's run state too).
    suspended: { file: SUSPEND_FILE, savedAt: new Date().toISOString(), argvSha256: argvHash(record.argv), sizeBytes: size, ...(wasRunning ? {} : { paused: true }) },
  };
  await writeFileAtomicAsync(bundle.config, serializeConfig(config));
  await writeStopRequestAsync(rt, { by: process.pid, rung: 'quit', message: 'Suspended to disk; the next start resumes it.' });
  await m.quit({ timeoutMs: 10_000 }).catch(() => undefined);
  if (!(await deps.waitForExit(record.pid, vm.id, 15_000))) process.kill(record.pid, 'SIGKILL');
  // The supervising shell records QEMU's exit status a moment later; the run state reads it.
  for (let i = 0; i < 100; i++) {
    if (await fsp.access(rt.exitStatus).then(() => true, () => false)) break;
    await sleep(20);
  }
}

/** What a start of a suspended VM adds to the command line, checked against the saved state. */
export interface ResumePlan {
  /** The command line to launch for the resume: the VM's own (`args`, whose hash matched), without
   *  the clipboard channel (the state was saved without it), plus `-incoming`. */
  launchArgs(args: readonly string[]): readonly string[];
  /** Streams the state in once QEMU runs, waits until it runs on (or, for a VM suspended while
   *  paused, stays paused), plugs the clipboard channel back, then forgets the saved state.
   *  @returns whether the VM is left paused */
  complete(monitor: () => Promise<Monitor & MigrationMonitor & SnapshotJobMonitor>): Promise<{ readonly paused: boolean }>;
}

/** `args` without the qemu-vdagent chardev and its virtio-serial port; whether they were there. */
function withoutClipboardArgs(args: readonly string[]): { readonly args: readonly string[]; readonly removed: boolean } {
  const out: string[] = [];
  let removed = false;
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1] ?? '';
    const chardev = args[i] === '-chardev' && next.startsWith('qemu-vdagent,');
    const port = args[i] === '-device' && next.startsWith('virtserialport,') && next.split(',').includes(`chardev=${QemuIds.clipboardChardev}`);
    if (chardev || port) {
      removed = true;
      i++;
      continue;
    }
    out.push(args[i]!);
  }
  return { args: out, removed };
}

/**
 * The resume plan of a suspended VM, or null when it is not suspended.
 * @throws VivariumError invalid-state when the saved state does not fit the command line any more
 *   (or is gone): the state is set aside and the sentence says the next start boots afresh.
 */
export async function resumePlan(layout: Layout, vm: DriverVm, argv: readonly string[]): Promise<ResumePlan | null> {
  const s = vm.config.suspended;
  if (!s) return null;
  const bundle = layout.bundle(vm.id);
  const rt = layout.runtime(vm.id);
  const file = bundle.file(s.file);
  const setAside = async (why: string): Promise<never> => {
    await fsp.rename(file, bundle.file(`${SUSPEND_FILE}.discarded`)).catch(() => undefined);
    await writeFileAtomicAsync(bundle.config, serializeConfig({ ...vm.config, suspended: null }));
    throw errors.state(`The saved state of "${vm.config.name}" cannot be resumed: ${why}. It was set aside (${SUSPEND_FILE}.discarded in its folder); start it again to boot afresh.`);
  };
  try {
    const st = await fsp.stat(file);
    if (st.size !== s.sizeBytes) await setAside(`the file is ${st.size} bytes, not the ${s.sizeBytes} saved`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') await setAside('its file is missing');
    throw e;
  }
  if (argvHash(argv) !== s.argvSha256) await setAside('the VM\'s command line changed since it was suspended (settings or QEMU differ)');
  const sock = `${rt.dir}/incoming.sock`;
  let clipboard = false;
  return {
    launchArgs: (args) => {
      const r = withoutClipboardArgs(args);
      clipboard = r.removed;
      return [...r.args, '-incoming', `unix:${sock}`];
    },
    complete: async (monitor) => {
      const conn = await connectWhenReady(sock, 30_000);
      // Settles to the copy's error or null (never an unhandled rejection while the migration runs).
      const sent = pipeline(fs.createReadStream(file), conn).then(() => null, (e: unknown) => e as NodeJS.ErrnoException);
      const m = await monitor();
      try {
        await followMigration(m, `resume "${vm.config.name}"`);
        // Once QEMU says the incoming migration completed it has read the whole state, and it may
        // close the socket before our end of the stream has finished (seen under load as
        // "Premature close"): only another failure of the copy is an error.
        const sendError = await sent;
        if (sendError && !['ERR_STREAM_PREMATURE_CLOSE', 'EPIPE', 'ECONNRESET'].includes(sendError.code ?? '')) throw sendError;
        if (clipboard) await m.plugVdagentPort(QemuIds.clipboardChardev, QemuIds.clipboardPort, 'vser0.0', VDAGENT_PORT_NAME);
        // The state carries the run state it was saved in (paused, for the save): run on, unless
        // the VM was paused when it was suspended.
        if (!s.paused && !(await m.queryStatus()).running) await m.cont();
      } catch (e) {
        conn.destroy();
        // QEMU gone under the resume: a sentence, not QmpClient's bare lost-connection error.
        if (m.closed) throw errors.state(`"${vm.config.name}" stopped (forced off, or QEMU ended) while it was resuming; its saved state is kept, so the next start resumes it again.`, { qemuEnded: true, job: 'resume' });
        if (e instanceof QmpError) throw errors.qemu(`QEMU could not resume "${vm.config.name}": ${e.desc}`, { class: e.errorClass });
        throw e;
      }
      await writeFileAtomicAsync(bundle.config, serializeConfig({ ...vm.config, suspended: null }));
      await fsp.rm(file, { force: true });
      return { paused: s.paused === true };
    },
  };
}

async function connectWhenReady(sock: string, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const c = net.createConnection(sock, () => resolve(c));
        c.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw errors.qemu(`QEMU did not open its incoming state socket: ${(e as Error).message}`);
      await sleep(20);
    }
  }
}

/**
 * Discards the saved state of the suspended VM `vm` (VirtualBox's "Discard Saved State"): removes
 * its state file and clears `suspended` in its config, so it is stopped and the next start boots
 * afresh (as after a power cut). Holds the VM's start lock meanwhile, so no start resumes the state
 * being removed. A VM that is not suspended is left alone (returns false).
 * @throws VivariumError invalid-state when the VM is being started by another process
 */
export async function discardSuspendedState(layout: Layout, vm: DriverVm): Promise<boolean> {
  const s = vm.config.suspended;
  if (!s) return false;
  const rt = layout.runtime(vm.id);
  await layout.ensureRuntimeDirAsync(rt.dir);
  const release = await acquireStartLockAsync(rt, vm.config.name);
  try {
    const bundle = layout.bundle(vm.id);
    // Config first: a state file without `suspended` is only a stray file; the reverse would resume nothing.
    await writeFileAtomicAsync(bundle.config, serializeConfig({ ...vm.config, suspended: null }));
    await fsp.rm(bundle.file(s.file), { force: true });
    // The last exit said "the next start resumes it": no longer true.
    try {
      const exit = JSON.parse(await fsp.readFile(bundle.lastExit, 'utf8')) as Record<string, unknown>;
      await writeFileAtomicAsync(bundle.lastExit, `${JSON.stringify({ ...exit, message: 'Its saved state was discarded; the next start boots afresh.' }, null, 2)}\n`);
    } catch {
      // no record of the last exit: nothing to correct
    }
  } finally {
    await release();
  }
  return true;
}
