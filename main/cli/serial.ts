/**
 * `vivarium serial NAME`: the serial console on this terminal. Raw mode when stdin is a TTY; Ctrl-]
 * detaches (as in telnet and virsh console). Through a running engine the bytes come over its stream
 * bridge (the engine holds the VM's one serial connection); otherwise straight from the unix socket.
 */
import * as net from 'node:net';
import { WebSocket } from 'ws';
import type { Services } from '../common/contract';
import { errors } from '../common/errors';
import { shellArg } from '../common/shell-arg';
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
    throw errors.state(`"${vm.name}" is ${vm.state}. Start it first: vivarium start ${shellArg(vm.name)}.`);
  }
  const pipe = engine.remote ? await viaEngine(s, vm.id) : await direct(engine.layout.runtime(vm.id).serial);
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
