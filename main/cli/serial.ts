/**
 * `vivarium serial NAME`: the serial console on this terminal. Raw mode when stdin is a TTY; Ctrl-]
 * detaches (as in telnet and virsh console). Through a running engine the bytes come over its stream
 * bridge (the engine holds the VM's one serial connection and shares it among any number of
 * clients); otherwise straight from the unix socket. QEMU's socket chardev serves one client at a
 * time and leaves a second one in the listen backlog, where its keystrokes would wait and reach the
 * guest later, so a direct attach holds an exclusive lock file in the VM's runtime folder and a
 * second one is refused with a sentence.
 */
import { rmSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import { WebSocket } from 'ws';
import type { Services } from '../common/contract';
import { ErrorCode, VivariumError, errors } from '../common/errors';
import type { CliIo } from './index';
import type { EngineHandle } from './engine-connection';

const DETACH = 0x1d; // Ctrl-]

interface Pipe {
  write(b: Buffer): void;
  onData(cb: (b: Buffer) => void): void;
  onClose(cb: () => void): void;
  close(): void;
}

export async function attachSerial(ref: string, s: Services, engine: EngineHandle, io: CliIo): Promise<number> {
  const vm = await s.vms.get(ref);
  if (vm.state !== 'running' && vm.state !== 'paused') {
    throw new VivariumError(ErrorCode.InvalidState, `"${vm.name}" is ${vm.state}.`, { vm: vm.name }, { remedy: { kind: 'start-vm', vm: vm.name } });
  }
  let pipe: Pipe;
  if (engine.remote) {
    pipe = await viaEngine(s, vm.id);
  } else {
    const rt = engine.layout.runtime(vm.id);
    const release = await lockAttach(rt.serialAttachLock, vm.name);
    try {
      pipe = await direct(rt.serial);
    } catch (e) {
      await release();
      throw e;
    }
    const close = pipe.close;
    pipe = { ...pipe, close: () => (close(), void release()) };
  }
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  if (tty) io.stderr.write(`Connected to the serial console of ${vm.name}. Press Ctrl-] to detach.\r\n`);
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      pipe.close();
      resolve(code);
    };
    pipe.onData((b) => io.stdout.write(b));
    pipe.onClose(() => finish(0));
    if (tty) stdin.setRawMode(true);
    stdin.on('data', (b: Buffer) => {
      if (tty && b.includes(DETACH)) return finish(0);
      pipe.write(b);
    });
    // Piped input (scripts): once it ends, give the guest a moment to answer, then detach.
    stdin.on('end', () => setTimeout(() => finish(0), 1500));
    stdin.resume();
  });
}

function direct(socketPath: string): Promise<Pipe> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    sock.once('error', (e) => reject(errors.state(`Cannot open the serial console: ${e.message}.`)));
    sock.once('connect', () =>
      resolve({
        write: (b) => sock.write(b),
        onData: (cb) => sock.on('data', cb),
        onClose: (cb) => sock.on('close', cb),
        close: () => sock.destroy(),
      }),
    );
  });
}

async function viaEngine(s: Services, id: string): Promise<Pipe> {
  // Like a direct attach: only what the guest writes from now on (`serial --log` prints the past).
  const { url } = await s.console.openStream(id, 'serial', { history: false });
  const ws = new WebSocket(url);
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', (e) => reject(errors.state(`Cannot open the serial console: ${e.message}.`)));
  });
  return {
    write: (b) => ws.send(b),
    onData: (cb) => ws.on('message', (d: Buffer) => cb(d)),
    onClose: (cb) => ws.on('close', cb),
    close: () => ws.close(),
  };
}

/** A lock holder that has not written its pid yet is given this long before it counts as gone. */
const FRESH_LOCK_MS = 5000;

/**
 * Takes the VM's serial-attach lock: creates `file` exclusively (O_EXCL) with our pid, taking over
 * a lock whose holder has exited (killed, so it never removed it). Resolves with the release; also
 * released when this process exits.
 * @throws VivariumError busy when another live process holds it.
 */
export async function lockAttach(file: string, vmName: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = await lockHolder(file);
      if (holder !== 'gone') {
        throw new VivariumError(
          ErrorCode.Busy,
          `The serial console of "${vmName}" is already attached${typeof holder === 'number' ? ` (vivarium serial, pid ${holder})` : ''}, and QEMU serves it to one client at a time. Detach that one first (Ctrl-]), or run \`vivarium serve\` (or open the app): with an engine running, any number of consoles share it.`,
          { vm: vmName, ...(typeof holder === 'number' ? { pid: holder } : {}) },
        );
      }
      await fs.rm(file, { force: true });
      continue;
    }
    try {
      await handle.writeFile(`${process.pid}\n`);
    } finally {
      await handle.close();
    }
    // Until the release has removed the file, exiting removes it (synchronously: 'exit' handlers
    // cannot wait).
    const onExit = () => rmSync(file, { force: true });
    process.once('exit', onExit);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await fs.rm(file, { force: true });
      process.removeListener('exit', onExit);
    };
  }
  throw errors.busy(`The serial console of "${vmName}" is being attached by another process. Try again in a moment.`);
}

/** The pid in a lock file if that process lives, 'fresh' for a lock too new to have its pid yet,
 *  'gone' when its holder has exited (or the file vanished). */
async function lockHolder(file: string): Promise<number | 'fresh' | 'gone'> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, { mtimeMs }] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
  } catch {
    return 'gone';
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return Date.now() - mtimeMs < FRESH_LOCK_MS ? 'fresh' : 'gone';
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    // EPERM: alive, but another user's (the runtime folder is private, so not expected).
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : 'gone';
  }
}
