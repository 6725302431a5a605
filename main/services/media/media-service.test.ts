/**
 * Downloads against a real HTTP server on 127.0.0.1 (main/test-support/file-server.ts): verified,
 * refused on a wrong checksum, resumed with Range after a cut, paused by cancel, and resumed by the
 * next engine after a restart.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DownloadInfo } from '../../common/contract/media';
import { CLI_BIN } from '../../test-support/cli';
import { startFileServer, type FileServer } from '../../test-support/file-server';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { Layout } from '../paths';
import { MediaManager, downloadId } from './media-service';

const SIZE = 48 * 1024 * 1024 + 12345; // ISO-sized enough to cross many chunks, odd on purpose
let dataDir: string;
let isoFile: string;
let sha256: string;
let sha512: string;
let srv: FileServer;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-media-src-'));
  isoFile = path.join(dataDir, 'tiny-os-1.0-amd64.iso');
  const fd = fs.openSync(isoFile, 'w');
  const h256 = createHash('sha256');
  const h512 = createHash('sha512');
  for (let written = 0; written < SIZE; ) {
    const chunk = randomBytes(Math.min(1 << 20, SIZE - written));
    fs.writeSync(fd, chunk);
    h256.update(chunk);
    h512.update(chunk);
    written += chunk.length;
  }
  fs.closeSync(fd);
  sha256 = h256.digest('hex');
  sha512 = h512.digest('hex');
  srv = await startFileServer({
    '/os/tiny-os-1.0-amd64.iso': { file: isoFile },
    '/os/SHA256SUMS': { text: `${'0'.repeat(64)}  other.iso\n${sha256} *tiny-os-1.0-amd64.iso\n` },
    // Fedora-style: BSD lines inside an OpenPGP clear-signature.
    '/os/CHECKSUM': {
      text: `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# tiny-os-1.0-amd64.iso: ${SIZE} bytes\nSHA512 (tiny-os-1.0-amd64.iso) = ${sha512}\n-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n`,
    },
    '/os/WRONGSUMS': { text: `${'ab'.repeat(32)}  tiny-os-1.0-amd64.iso\n` },
  });
});

afterAll(async () => {
  await srv.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

let t: TestHome;
let managers: MediaManager[];
let mediaDir: string;
beforeEach(() => {
  t = makeTestHome();
  managers = [];
  mediaDir = Layout.fromEnv(t.env).mediaDir;
  srv.requests.length = 0;
  srv.behave('/os/tiny-os-1.0-amd64.iso', { times: 0 });
});
afterEach(async () => {
  for (const m of managers) await m.dispose();
  await t.cleanup();
});

function manager(extra: Partial<ConstructorParameters<typeof MediaManager>[0]> = {}): MediaManager {
  const m = new MediaManager({ dir: mediaDir, retryDelayMs: 50, ...extra });
  managers.push(m);
  return m;
}

const ISO = () => srv.url('/os/tiny-os-1.0-amd64.iso');

/** Every file below the media folder, relative. */
function filesIn(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

function untilProgress(m: MediaManager, id: string, pred: (i: DownloadInfo) => boolean): Promise<DownloadInfo> {
  return new Promise((resolve) => {
    const sub = m.onDidProgress((i) => {
      if (i.id === id && pred(i)) {
        sub.dispose();
        resolve(i);
      }
    });
  });
}

describe('media downloads', () => {
  it('downloads a file listed in a GNU-format SUMS file, verifies it and keeps it private', async () => {
    const m = manager();
    const seen: DownloadInfo[] = [];
    m.onDidProgress((i) => seen.push(i));
    const info = await m.download({ source: ISO(), sumsUrl: srv.url('/os/SHA256SUMS') });
    expect(info.id).toBe(downloadId(ISO()));
    const item = await m.wait(info.id);
    expect(item.path).toBe(path.join(mediaDir, 'tiny-os-1.0-amd64.iso'));
    expect(item.sha256).toBe(sha256);
    expect(item.sizeBytes).toBe(SIZE);
    expect(fs.statSync(item.path).mode & 0o777).toBe(0o600);
    expect(fs.statSync(mediaDir).mode & 0o777).toBe(0o700);
    // Progress carried bytes, a total and the final state. (On a quiet machine the local download
    // can end inside one 100 ms progress tick, so the bytes may first show with 'verifying'.)
    expect(seen.some((i) => (i.state === 'downloading' || i.state === 'verifying') && i.receivedBytes > 0 && i.totalBytes === SIZE)).toBe(true);
    expect(seen.at(-1)).toMatchObject({ state: 'done', receivedBytes: SIZE });
    expect(await m.list()).toEqual([expect.objectContaining({ path: item.path, sha256, sizeBytes: SIZE, source: ISO() })]);
    expect(await m.downloads()).toEqual([]);
    // No partial or state is left behind.
    expect(filesIn(mediaDir)).toEqual(['.meta/tiny-os-1.0-amd64.iso.json', 'tiny-os-1.0-amd64.iso']);
    // Asking again is answered from the library, without fetching.
    const before = srv.requests.length;
    const again = await m.download({ source: ISO(), sumsUrl: srv.url('/os/SHA256SUMS') });
    expect(again.state).toBe('done');
    expect(srv.requests.length).toBe(before);
  });

  it('two requests for the same download at once (a double click) share one job and one fetch', async () => {
    const m = manager();
    const request = { source: ISO(), sumsUrl: srv.url('/os/SHA256SUMS') };
    const [a, b] = await Promise.all([m.download(request), m.download(request)]);
    expect(b.id).toBe(a.id);
    const item = await m.wait(a.id);
    expect(item.sha256).toBe(sha256);
    expect(srv.requests.filter((r) => r.path.endsWith('.iso'))).toHaveLength(1);
    expect(filesIn(mediaDir)).toEqual(['.meta/tiny-os-1.0-amd64.iso.json', 'tiny-os-1.0-amd64.iso']);
  });

  it('verifies SHA-512 from a clear-signed BSD-format checksum file and from a catalog entry', async () => {
    const resources = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-res-'));
    try {
      fs.mkdirSync(path.join(resources, 'catalog'));
      fs.writeFileSync(
        path.join(resources, 'catalog', 'os-catalog.json'),
        JSON.stringify({
          version: 1,
          entries: [
            {
              id: 'tiny-os-1-x86_64',
              name: 'Tiny OS',
              version: '1.0',
              arch: 'x86_64',
              kind: 'installer',
              url: ISO(),
              checksumUrl: srv.url('/os/CHECKSUM'),
              checksumAlgorithm: 'sha512',
              signature: { kind: 'clearsigned', keysUrl: 'https://example.org/keys.asc' },
              sizeBytes: SIZE,
              format: 'iso',
              presetHints: { preset: 'linux', minMemoryMiB: 256, recommendedMemoryMiB: 512, recommendedDiskGiB: 4, recommendedCpus: 1, firmware: 'bios', diskBus: 'virtio', nic: 'virtio-net-pci' },
              homepage: 'https://example.org/',
            },
          ],
        }),
      );
      const m = manager({ resourcesDir: resources });
      expect((await m.catalog({ arch: 'aarch64' })).length).toBe(0);
      const info = await m.download({ source: 'tiny-os-1-x86_64' });
      // Clear-signed, but this catalog ships no key for it: said, and the digest is still checked.
      expect(info.checksum).toEqual({ algorithm: 'sha512', from: `${srv.url('/os/CHECKSUM')} (signed, but Vivarium ships no copy of the signing key, so the signature is not checked; check it with gpg --verify and the keys at https://example.org/keys.asc)` });
      const item = await m.wait(info.id);
      expect(item.sha256).toBe(sha256);
      expect(item.catalogId).toBe('tiny-os-1-x86_64');
      await expect(m.download({ source: 'no-such-os' })).rejects.toThrow(/No OS with id "no-such-os" in the catalog/);
    } finally {
      fs.rmSync(resources, { recursive: true, force: true });
    }
  });

  it('refuses a file whose checksum does not match, says so, and leaves nothing behind', async () => {
    const m = manager();
    const info = await m.download({ source: ISO(), sha256: 'ab'.repeat(32) });
    await expect(m.wait(info.id)).rejects.toThrow(/did not match its SHA-256 checksum .*so it was deleted/);
    expect(filesIn(mediaDir)).toEqual([]);
    expect(await m.list()).toEqual([]);
    // The same through a SUMS file with a wrong line.
    const info2 = await m.download({ source: ISO(), sumsUrl: srv.url('/os/WRONGSUMS') });
    await expect(m.wait(info2.id)).rejects.toThrow(/did not match/);
    expect(filesIn(mediaDir)).toEqual([]);
  });

  it('refuses before downloading when the SUMS file does not list the file, or nothing can verify it', async () => {
    const m = manager();
    srv.set('/os/OTHERSUMS', { text: `${sha256}  something-else.iso\n` });
    const info = await m.download({ source: ISO(), sumsUrl: srv.url('/os/OTHERSUMS') });
    await expect(m.wait(info.id)).rejects.toThrow(/does not list tiny-os-1.0-amd64.iso/);
    expect(srv.requests.filter((r) => r.path.endsWith('.iso'))).toEqual([]);
    expect(filesIn(mediaDir)).toEqual([]);
    await expect(m.download({ source: ISO() })).rejects.toThrow(/only keeps downloads it can verify/);
    await expect(m.download({ source: 'file:///etc/passwd', sha256: sha256 })).rejects.toThrow('"file:///etc/passwd" cannot be downloaded: only http:// and https:// addresses can be downloaded, not file:.');
    const missing = await m.download({ source: srv.url('/os/missing.iso'), sha256 });
    await expect(m.wait(missing.id)).rejects.toThrow(/404 Not Found/);
    expect(filesIn(mediaDir)).toEqual([]);
  });

  it('resumes with Range after the connection is cut half way, and ends verified', async () => {
    srv.behave('/os/tiny-os-1.0-amd64.iso', { cutAfterBytes: Math.floor(SIZE / 2), times: 1 });
    const m = manager();
    const info = await m.download({ source: ISO(), sha256 });
    const item = await m.wait(info.id);
    expect(item.sha256).toBe(sha256);
    const isoRequests = srv.requests.filter((r) => r.path.endsWith('.iso'));
    expect(isoRequests.length).toBe(2);
    expect(isoRequests[0]).toMatchObject({ range: null, status: 200 });
    expect(isoRequests[1]!.status).toBe(206);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(isoRequests[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(Math.floor(SIZE / 2));
    expect(isoRequests[1]!.ifRange).toMatch(/^"/); // the ETag guards the splice
    expect(createHash('sha256').update(fs.readFileSync(item.path)).digest('hex')).toBe(sha256);
  });

  it('starts over when the server ignores Range, and still ends verified', async () => {
    srv.behaveSequence('/os/tiny-os-1.0-amd64.iso', [{ cutAfterBytes: Math.floor(SIZE / 3) }, { ignoreRange: true }]);
    const m = manager();
    const info = await m.download({ source: ISO(), sha256 });
    const item = await m.wait(info.id);
    expect(item.sha256).toBe(sha256);
    expect(item.sizeBytes).toBe(SIZE);
    const isoRequests = srv.requests.filter((r) => r.path.endsWith('.iso'));
    expect(isoRequests.map((r) => r.status)).toEqual([200, 200]);
    expect(isoRequests[1]!.range).toMatch(/^bytes=\d+-$/);
  });

  it('cancel leaves a resumable partial; resume goes on from it and ends verified', async () => {
    srv.behave('/os/tiny-os-1.0-amd64.iso', { bytesPerSecond: 8 * 1024 * 1024 });
    const m = manager();
    const info = await m.download({ source: ISO(), sha256 });
    await untilProgress(m, info.id, (i) => i.receivedBytes > 2 * 1024 * 1024);
    const waiting = expect(m.wait(info.id)).rejects.toThrow(/was cancelled at \d+ bytes; the partial file is kept/);
    const paused = await m.cancel(info.id);
    expect(paused.state).toBe('paused');
    await waiting;
    const part = path.join(mediaDir, '.downloads', `${info.id}.part`);
    const kept = fs.statSync(part).size;
    expect(kept).toBeGreaterThan(2 * 1024 * 1024);
    expect(kept).toBeLessThan(SIZE);
    expect(fs.statSync(part).mode & 0o777).toBe(0o600);
    const listed = await m.downloads();
    expect(listed).toEqual([expect.objectContaining({ id: info.id, state: 'paused', receivedBytes: kept, totalBytes: SIZE })]);
    await expect(m.wait(info.id)).rejects.toThrow(/is paused/);

    srv.behave('/os/tiny-os-1.0-amd64.iso', { times: 0 });
    const before = srv.requests.length;
    const resumed = await m.resume(info.id);
    expect(resumed.state).toBe('downloading');
    const item = await m.wait(info.id);
    expect(item.sha256).toBe(sha256);
    expect(srv.requests.slice(before).filter((r) => r.path.endsWith('.iso'))[0]).toMatchObject({ range: `bytes=${kept}-`, status: 206 });
    expect(filesIn(mediaDir)).toEqual(['.meta/tiny-os-1.0-amd64.iso.json', 'tiny-os-1.0-amd64.iso']);
  });

  it('discard deletes the partial', async () => {
    srv.behave('/os/tiny-os-1.0-amd64.iso', { bytesPerSecond: 8 * 1024 * 1024 });
    const m = manager();
    const info = await m.download({ source: ISO(), sha256 });
    await untilProgress(m, info.id, (i) => i.receivedBytes > 1024 * 1024);
    await m.discard(info.id);
    expect(filesIn(mediaDir)).toEqual([]);
    expect(await m.downloads()).toEqual([]);
  });

  it('an engine that stops mid-download is resumed by the next one, from where it stopped', async () => {
    srv.behave('/os/tiny-os-1.0-amd64.iso', { bytesPerSecond: 8 * 1024 * 1024 });
    const first = manager();
    const info = await first.download({ source: ISO(), sumsUrl: srv.url('/os/SHA256SUMS') });
    await untilProgress(first, info.id, (i) => i.receivedBytes > 2 * 1024 * 1024);
    await first.dispose();
    const kept = fs.statSync(path.join(mediaDir, '.downloads', `${info.id}.part`)).size;
    expect(kept).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(mediaDir, '.downloads', `${info.id}.lock`))).toBe(false);

    srv.behave('/os/tiny-os-1.0-amd64.iso', { times: 0 });
    const before = srv.requests.length;
    const second = manager();
    expect(await second.resumeInterrupted()).toEqual([info.id]);
    const item = await second.wait(info.id);
    expect(item.sha256).toBe(sha256);
    const after = srv.requests.slice(before);
    // The digest was kept from the first engine's SUMS read; only the rest of the ISO was fetched.
    expect(after.map((r) => r.path)).toEqual(['/os/tiny-os-1.0-amd64.iso']);
    expect(after[0]).toMatchObject({ range: `bytes=${kept}-`, status: 206 });
    // A cancelled download is not resumed by the next engine.
    expect(await manager().resumeInterrupted()).toEqual([]);
  });

  it('a vivarium process killed mid-download (SIGKILL) leaves a partial the next engine resumes', async () => {
    srv.behave('/os/tiny-os-1.0-amd64.iso', { bytesPerSecond: 8 * 1024 * 1024 });
    const id = downloadId(ISO());
    const part = path.join(mediaDir, '.downloads', `${id}.part`);
    const child = spawn(process.execPath, [CLI_BIN, 'media', 'download', ISO(), '--sha256', sha256], {
      env: { ...t.env, VIVARIUM_NO_ENGINE: '1' },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    for (let i = 0; i < 300 && !(fs.existsSync(part) && fs.statSync(part).size > 2 * 1024 * 1024); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await exited;
    const kept = fs.statSync(part).size;
    expect(kept).toBeGreaterThan(2 * 1024 * 1024);
    const state = JSON.parse(fs.readFileSync(path.join(mediaDir, '.downloads', `${id}.json`), 'utf8')) as { running: boolean };
    expect(state.running).toBe(true);
    // Its lock names a process that is gone: taken over, not a reason to refuse.
    expect(fs.readFileSync(path.join(mediaDir, '.downloads', `${id}.lock`), 'utf8')).toBe(String(child.pid));

    srv.behave('/os/tiny-os-1.0-amd64.iso', { times: 0 });
    const before = srv.requests.length;
    const next = manager();
    expect(await next.resumeInterrupted()).toEqual([id]);
    expect((await next.wait(id)).sha256).toBe(sha256);
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(srv.requests.slice(before)[0]!.range ?? '')?.[1]);
    expect(resumedFrom).toBe(kept);
  });

  it('pauses with a sentence when the server cannot be reached, keeping the download resumable', async () => {
    const m = manager({ maxRetries: 1, retryDelayMs: 10 });
    // A port that was just free: nothing listens there.
    const probe = await startFileServer({});
    const url = probe.url('/nothing-listens.iso');
    await probe.close();
    const info = await m.download({ source: url, sha256 });
    await expect(m.wait(info.id)).rejects.toThrow(/paused after repeated failures: could not reach 127\.0\.0\.1:\d+ for the file: the server refused the connection \(ECONNREFUSED\)\. Nothing was downloaded yet; resume it \(id [0-9a-f]+\) when that is fixed\./);
    expect(await m.downloads()).toEqual([expect.objectContaining({ id: info.id, state: 'paused', receivedBytes: 0 })]);
  });

  it('refuses a download another live process holds', async () => {
    const m = manager();
    const id = downloadId(ISO());
    fs.mkdirSync(path.join(mediaDir, '.downloads'), { recursive: true });
    // pid 1 is always alive and never us.
    fs.writeFileSync(path.join(mediaDir, '.downloads', `${id}.lock`), '1');
    await expect(m.download({ source: ISO(), sha256 })).rejects.toThrow(/already being downloaded by another Vivarium process \(pid 1\)/);
  });
});
