/**
 * `vivarium catalog` and `vivarium media …` through the CLI's own entry point (main(argv, io)) with a
 * hosted engine, against a real HTTP server on 127.0.0.1.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../test-support/file-server';
import { makeTestHome, type TestHome } from '../test-support/home';
import { Layout } from '../services/paths';
import { main } from './index';
import { spawn } from 'node:child_process';
import { CLI_BIN, runCli } from '../test-support/cli';

const SIZE = 24 * 1024 * 1024 + 7;
let src: string;
let sha256: string;
let srv: FileServer;
let t: TestHome;

beforeAll(async () => {
  src = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-cli-media-'));
  const data = randomBytes(SIZE);
  data.write('CD001', 32769, 'latin1'); // an ISO 9660 volume descriptor: create --iso takes only CD images
  fs.writeFileSync(path.join(src, 'tiny.iso'), data);
  sha256 = createHash('sha256').update(data).digest('hex');
  srv = await startFileServer({ '/tiny.iso': { file: path.join(src, 'tiny.iso') }, '/SHA256SUMS': { text: `${sha256}  tiny.iso\n` } });
});
afterAll(async () => {
  await srv.close();
  fs.rmSync(src, { recursive: true, force: true });
});
beforeEach(() => {
  t = makeTestHome();
  srv.behave('/tiny.iso', { times: 0 });
});
afterEach(() => t.cleanup());

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => err.push(d));
  const code = await main(args, { stdout, stderr, env: { ...t.env, VIVARIUM_NO_ENGINE: '1' } });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe('vivarium catalog', () => {
  it('lists the catalog as documented, filtered by architecture', async () => {
    const all = await cli(['catalog', '--json']);
    expect(all.code).toBe(0);
    const rows = JSON.parse(all.stdout) as Record<string, unknown>[];
    expect(rows.length).toBeGreaterThan(10);
    for (const r of rows) expect(Object.keys(r).sort()).toEqual(['arch', 'checksumUrl', 'id', 'kind', 'name', 'sizeBytes', 'url', 'version']);
    const arm = JSON.parse((await cli(['catalog', '--arch', 'aarch64', '--json'])).stdout) as { arch: string }[];
    expect(arm.length).toBeGreaterThan(0);
    expect(arm.every((r) => r.arch === 'aarch64')).toBe(true);
    const text = await cli(['catalog']);
    expect(text.stdout).toMatch(/^ID\s+NAME\s+VERSION\s+ARCH\s+SIZE/);
    expect(text.stdout).toContain('debian-13-netinst-x86_64');
    const bad = await cli(['catalog', '--arch', 'sparc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--arch must be x86_64 or aarch64');
  });
});

describe('vivarium media', () => {
  it('downloads with a SUMS file: progress on stderr, the path on stdout, then lists it', async () => {
    const r = await cli(['media', 'download', srv.url('/tiny.iso'), '--sums', srv.url('/SHA256SUMS'), '--json']);
    expect(r.stderr).toContain(`Downloading ${srv.url('/tiny.iso')}`);
    expect(r.stderr).toMatch(/tiny\.iso: [\d.]+ \w?i?B of 24 MiB \(\d+%\)/);
    // How it was verified, first as planned and at the end as done: a SUMS file given by URL is not signed.
    expect(r.stderr).toContain(`  will be verified against the SHA-256 from ${srv.url('/SHA256SUMS')} (checksum not signed)\n`);
    expect(r.stderr).toContain(`  verified with SHA256SUMS at ${srv.url('/SHA256SUMS')} (checksum not signed)\n`);
    expect(r.code).toBe(0);
    const media = Layout.fromEnv(t.env).mediaDir;
    expect(JSON.parse(r.stdout)).toEqual({ path: path.join(media, 'tiny.iso'), sha256, sizeBytes: SIZE });
    expect(createHash('sha256').update(fs.readFileSync(path.join(media, 'tiny.iso'))).digest('hex')).toBe(sha256);
    const list = await cli(['media', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([{ path: path.join(media, 'tiny.iso'), sizeBytes: SIZE, sha256, source: srv.url('/tiny.iso') }]);
    // Plain text: just the path.
    const again = await cli(['media', 'download', srv.url('/tiny.iso'), '--sha256', sha256]);
    expect(again.stdout).toBe(`${path.join(media, 'tiny.iso')}\n`);
    expect(again.stderr).toContain('already downloaded and verified');
  });

  it('media remove deletes a downloaded file, unless a VM uses it', async () => {
    const r = await cli(['media', 'download', srv.url('/tiny.iso'), '--sha256', sha256, '--json']);
    // Before anything is verified, it says how it will be (tester-9 #3).
    expect(r.stderr).toContain('  will be verified against the SHA-256 you gave\n');
    const file = (JSON.parse(r.stdout) as { path: string }).path;
    expect((await cli(['create', 'installer', '--iso', file, '--disk-size', '0', '--accel', 'tcg', '--display', 'none'])).code).toBe(0);
    const inUse = await cli(['media', 'remove', 'tiny.iso']);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toContain('tiny.iso is used by the VM "installer"');
    expect(fs.existsSync(file)).toBe(true);
    expect((await cli(['delete', 'installer'])).code).toBe(0);
    const removed = await cli(['media', 'remove', file]);
    expect(removed.code).toBe(0);
    expect(fs.existsSync(file)).toBe(false);
    expect(JSON.parse((await cli(['media', 'list', '--json'])).stdout)).toEqual([]);
    const unknown = await cli(['media', 'remove', '/etc/passwd']);
    expect(unknown.code).toBe(2); // names no downloaded file: what was typed must change
    expect(unknown.stderr).toContain('/etc/passwd is not a file Vivarium downloaded');
    expect(fs.existsSync('/etc/passwd')).toBe(true);
  });

  it('refuses a wrong checksum and what it cannot verify, with exit status 1 and nothing left', async () => {
    const wrong = await cli(['media', 'download', srv.url('/tiny.iso'), '--sha256', 'f'.repeat(64)]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/tiny\.iso did not match its SHA-256 checksum .* so it was deleted/);
    expect(fs.readdirSync(Layout.fromEnv(t.env).mediaDir, { recursive: true }).filter((f) => !['.downloads', '.meta'].includes(String(f)))).toEqual([]);
    const unverified = await cli(['media', 'download', srv.url('/tiny.iso')]);
    expect(unverified.code).toBe(2);
    expect(unverified.stderr).toContain('a URL needs --sha256 HEX, --sha512 HEX or --sums URL');
    const usage = await cli(['media', 'download', srv.url('/tiny.iso'), '--sha256', 'xyz']);
    expect(usage.code).toBe(2);
    expect((await cli(['media', 'fetch', 'x'])).code).toBe(2);
  });

  it('Ctrl-C pauses keeping the partial; status shows it; resume ends verified', async () => {
    srv.behave('/tiny.iso', { bytesPerSecond: 4 * 1024 * 1024 });
    const downloads = path.join(Layout.fromEnv(t.env).mediaDir, '.downloads');
    const running = cli(['media', 'download', srv.url('/tiny.iso'), '--sha256', sha256]);
    // Wait until bytes are on disk, then "press" Ctrl-C.
    for (let i = 0; i < 200; i++) {
      const part = fs.existsSync(downloads) ? fs.readdirSync(downloads).find((f) => f.endsWith('.part')) : undefined;
      if (part && fs.statSync(path.join(downloads, part)).size > 1024 * 1024) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    process.emit('SIGINT');
    const r = await running;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/paused; the partial file is kept\. Run `vivarium media resume [0-9a-f]{16}`/);
    const status = JSON.parse((await cli(['media', 'status', '--json'])).stdout) as { id: string; state: string; receivedBytes: number; totalBytes: number }[];
    expect(status).toHaveLength(1);
    expect(status[0]).toMatchObject({ state: 'paused', totalBytes: SIZE });
    expect(status[0]!.receivedBytes).toBeGreaterThan(1024 * 1024);
    expect(status[0]!.receivedBytes).toBeLessThan(SIZE);

    srv.behave('/tiny.iso', { times: 0 });
    const resumed = await cli(['media', 'resume', status[0]!.id, '--json']);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ sha256, sizeBytes: SIZE });
    expect(srv.requests.filter((q) => q.path === '/tiny.iso').at(-1)).toMatchObject({ range: `bytes=${status[0]!.receivedBytes}-`, status: 206 });
    expect(JSON.parse((await cli(['media', 'status', '--json'])).stdout)).toEqual([]);
  });
});

describe('a download whose engine goes away', () => {
  it('says the download is paused and how it goes on (tester-9 #22)', async () => {
    srv.behave('/tiny.iso', { bytesPerSecond: 2 * 1024 * 1024 });
    const env = { ...t.env };
    delete env.VIVARIUM_NO_ENGINE;
    const serve = spawn(process.execPath, [CLI_BIN, 'serve', '--port', '0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const socket = Layout.fromEnv(env).engineSocket;
      const deadline = Date.now() + 30_000;
      while (!fs.existsSync(socket) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(fs.existsSync(socket)).toBe(true);
      const download = runCli(['media', 'download', srv.url('/tiny.iso'), '--sha256', sha256], { env, timeoutMs: 60_000 });
      // Some bytes in, then the engine stops.
      const status = async () => (JSON.parse((await runCli(['media', 'status', '--json'], { env })).stdout) as { receivedBytes: number }[])[0]?.receivedBytes ?? 0;
      while ((await status()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      // A second SIGTERM while it closes (a script or service manager repeating itself) must not
      // end it before the download has written what arrived: Node's default action would. Sent
      // the moment serve says it is closing.
      let serveErr = '';
      serve.stderr!.on('data', (d: Buffer) => {
        const closingNow = !serveErr.includes('closing (VMs keep running)');
        serveErr += d.toString();
        if (closingNow && serveErr.includes('closing (VMs keep running)')) serve.kill('SIGTERM');
      });
      serve.kill('SIGTERM');
      const exited = await new Promise<number | null>((r) => (serve.exitCode !== null ? r(serve.exitCode) : serve.once('exit', (code) => r(code))));
      expect(exited, serveErr).toBe(0);
      expect(serveErr).toContain('stopped.');
      const r = await download;
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/vivarium: Lost the connection to the Vivarium engine while downloading tiny\.iso: the download is paused, with what has arrived kept, and resumes when Vivarium starts again \(the app or `vivarium serve`\), or run `vivarium media resume [0-9a-f]{16}`\.\n$/);
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => (serve.exitCode !== null ? r(null) : serve.once('exit', r)));
    }
    // As it said: paused, the bytes kept.
    const after = JSON.parse((await cli(['media', 'status', '--json'])).stdout) as { state: string; receivedBytes: number }[];
    expect(after).toEqual([expect.objectContaining({ state: 'paused' })]);
    expect(after[0]!.receivedBytes).toBeGreaterThan(0);
  });
});
