/**
 * `vivarium serve` end to end in-process: the one printed line, the token exchange, the engine socket
 * the CLI uses, refusing a second engine, a clean stop on SIGTERM or abort — with VMs left running.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRpcClient } from '../common/rpc/client';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { isAlive } from '../test-support/qemu-procs';
import { createEngine } from '../services/engine';
import { Layout } from '../services/paths';
import { hostEngine, readEngineInfo } from './engine-host';
import { DEFAULT_PORT, defaultStaticDir, runServe } from './serve';
import { connectUnix } from './transports/unix-socket';

let t: TestHome;
let staticDir: string;

beforeEach(() => {
  t = makeTestHome();
  staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-serve-'));
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Vivarium</title>');
});

afterEach(async () => {
  fs.rmSync(staticDir, { recursive: true, force: true });
  await t.cleanup();
});

interface Running {
  readonly url: string;
  readonly exit: Promise<number>;
  stdout(): string;
  stderr(): string;
}

async function serve(options: { signal?: AbortSignal; port?: number } = {}): Promise<Running> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = runServe({ port: options.port ?? 0, env: t.env, stdout: out, stderr: err, staticDir, signal: options.signal });
  const deadline = Date.now() + 10_000;
  while (!stdout.includes('\n')) {
    const done = await Promise.race([exit.then((c) => `exited ${c}`), new Promise<null>((r) => setTimeout(() => r(null), 10))]);
    if (done || Date.now() > deadline) throw new Error(`serve did not print its URL (${done ?? 'timeout'}): ${stderr}`);
  }
  return { url: stdout.trim(), exit, stdout: () => stdout, stderr: () => stderr };
}

function get(url: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    }).on('error', reject);
  });
}

describe('vivarium serve', () => {
  it('prints one URL with the token, serves the engine to the CLI, and stops cleanly on abort', async () => {
    const stop = new AbortController();
    const s = await serve({ signal: stop.signal });
    expect(s.stdout()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}\n$/);
    const r = await get(s.url);
    expect(r.status).toBe(302);
    expect(r.location).toBe('/');
    expect((await get(s.url.replace(/\?token=.*/, ''))).status).toBe(401);

    const layout = Layout.fromEnv(t.env);
    // engine.json: private (0600 in a 0700 folder), names this process and the URL to open, so a
    // second serve can point the user to it.
    const info = readEngineInfo(layout);
    expect(info?.pid).toBe(process.pid);
    expect(fs.statSync(layout.engineInfo).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(layout.engineInfo)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(fs.readFileSync(layout.engineInfo, 'utf8')).openUrl).toBe(s.url);

    // The CLI's route in: RPC on the engine socket.
    const cli = createRpcClient(await connectUnix(layout.engineSocket));
    expect(await cli.services.vms.list()).toEqual([]);
    cli.dispose();

    // A second engine on the same library is refused, naming the first.
    await expect(hostEngine({ env: t.env, http: { port: 0, staticDir: null } })).rejects.toThrow(
      `Another Vivarium engine is running (pid ${process.pid}). It serves ${s.url} — open that. Use it, or stop it first.`,
    );

    stop.abort();
    expect(await s.exit).toBe(0);
    expect(s.stdout().split('\n').filter(Boolean)).toHaveLength(1);
    expect(s.stderr()).toMatch(/aborted: closing \(VMs keep running\)/);
    expect(fs.existsSync(layout.engineSocket)).toBe(false);
    expect(fs.existsSync(layout.engineInfo)).toBe(false);
    await expect(get(s.url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('stops on SIGTERM and leaves running VMs running', async () => {
    const guest = testGuest();
    const before = process.listeners('SIGTERM');
    const s = await serve();
    const layout = Layout.fromEnv(t.env);
    const cli = createRpcClient(await connectUnix(layout.engineSocket));
    const vm = await cli.services.vms.create({
      name: 'outlives-serve',
      kernel: guest.kernel,
      initrd: guest.initrd,
      append: guest.append,
      accel: 'tcg',
      memoryMiB: 128,
      cpus: 1,
      diskSizeBytes: 0,
      net: 'none',
      display: 'none',
    });
    const started = await cli.services.vms.start(vm.id, {});
    cli.dispose();
    expect(started.state).toBe('running');

    // Deliver SIGTERM to serve's handler only (the test runner has its own).
    const ours = process.listeners('SIGTERM').filter((l) => !before.includes(l));
    expect(ours).toHaveLength(1);
    ours[0]!('SIGTERM');
    expect(await s.exit).toBe(0);
    expect(s.stderr()).toMatch(/SIGTERM: closing/);
    expect(process.listeners('SIGTERM')).toEqual(before);

    // The VM did not notice; a new engine finds it and stops it.
    expect(isAlive(started.pid!)).toBe(true);
    const later = createEngine({ env: t.env });
    expect((await later.services.vms.get(vm.id)).state).toBe('running');
    await later.services.vms.stop(vm.id, { force: true });
    await later.dispose();
  });

  it('says to build the UI when out/renderer is missing', async () => {
    const err = new PassThrough();
    let text = '';
    err.on('data', (d: Buffer) => (text += d.toString()));
    const code = await runServe({ port: 0, env: t.env, stdout: new PassThrough(), stderr: err, staticDir: path.join(staticDir, 'nope') });
    expect(code).toBe(1);
    expect(text).toMatch(/Run `npm run build` first/);
  });

  it('reports a port in use', async () => {
    const blocker = http.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(runServe({ port, env: t.env, stdout: new PassThrough(), stderr: new PassThrough(), staticDir })).rejects.toThrow(
        `Port ${port} on 127.0.0.1 is already in use. Pick another with --port N, or --port 0 for any free port.`,
      );
    } finally {
      blocker.close();
    }
    // Nothing was left behind by the failed start.
    expect(fs.existsSync(Layout.fromEnv(t.env).engineSocket)).toBe(false);
  });

  it('finds the built renderer from the compiled file and from the sources', () => {
    expect(defaultStaticDir('/repo/out/main/server')).toBe('/repo/out/renderer');
    expect(defaultStaticDir('/repo/main/server')).toBe('/repo/out/renderer');
    expect(DEFAULT_PORT).toBe(8780);
  });
});
