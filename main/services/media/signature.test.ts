/**
 * Signed SUMS files (issue 9): a catalog download checks the OpenPGP signature of the distro's SUMS
 * file against the keys Vivarium ships before it trusts a digest from it. Against a real HTTP server
 * on 127.0.0.1 and keys generated in the test (OpenPGP.js, the library the product uses): a good
 * detached signature (armored and binary) and a good clear-signed file are accepted and named in the
 * download; a SUMS file changed after signing, a signature by a key the entry does not name and a
 * garbled signature refuse the download with a sentence, before a byte of the image is fetched; an
 * entry without a signature says "checksum not signed". The shipped Debian keyring is checked too.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../../test-support/file-server';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { Layout } from '../paths';
import { loadCatalog } from './catalog';
import { MediaManager } from './media-service';
import { BadSignature, verifySums } from './signature';

const IMAGE = 'tiny-os-2.0-amd64.iso';
let data: Buffer;
let sha256: string;
let sums: string;
let distro: { privateKey: string; publicKey: string; fingerprint: string };
let stranger: { privateKey: string; publicKey: string; fingerprint: string };
let srv: FileServer;
let resources: string;

async function makeKey(name: string): Promise<{ privateKey: string; publicKey: string; fingerprint: string }> {
  const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name, email: 'cd@tiny.example' }], format: 'armored' });
  const fingerprint = (await openpgp.readKey({ armoredKey: publicKey })).getFingerprint().toUpperCase();
  return { privateKey, publicKey, fingerprint };
}

async function detached(text: string, key: string, format: 'armored' | 'binary'): Promise<string | Uint8Array> {
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: key });
  const message = await openpgp.createMessage({ binary: Buffer.from(text) });
  return format === 'armored' ? openpgp.sign({ message, signingKeys, detached: true, format: 'armored' }) : openpgp.sign({ message, signingKeys, detached: true, format: 'binary' });
}

async function clearsigned(text: string, key: string): Promise<string> {
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: key });
  return openpgp.sign({ message: await openpgp.createCleartextMessage({ text }), signingKeys });
}

/** A catalog entry for the test image, its SUMS file at `sums`, signed as `signature` says. */
function entry(id: string, sumsPath: string, signature: Record<string, unknown>): Record<string, unknown> {
  return {
    id,
    name: 'Tiny OS',
    version: '2.0',
    arch: 'x86_64',
    kind: 'installer',
    url: srv.url(`/${id}/${IMAGE}`),
    checksumUrl: srv.url(sumsPath),
    checksumAlgorithm: 'sha256',
    signature,
    sizeBytes: data.length,
    format: 'iso',
    presetHints: { preset: 'linux', minMemoryMiB: 256, recommendedMemoryMiB: 512, recommendedDiskGiB: 4, recommendedCpus: 1, firmware: 'bios', diskBus: 'virtio', nic: 'virtio-net-pci' },
    homepage: 'https://tiny.example/',
  };
}

beforeAll(async () => {
  data = randomBytes(512 * 1024 + 7);
  sha256 = createHash('sha256').update(data).digest('hex');
  sums = `${'0'.repeat(64)}  other.iso\n${sha256}  ${IMAGE}\n`;
  distro = await makeKey('Tiny OS CD signing key');
  stranger = await makeKey('Somebody else');
  const tampered = sums.replace(sha256, createHash('sha256').update('evil').digest('hex'));
  const ids = ['good-armored', 'good-binary', 'good-clear', 'tampered', 'stranger', 'garbled', 'unsigned', 'no-key', 'clear-outside'];
  const routes: Record<string, { text: string | Buffer }> = {};
  for (const id of ids) routes[`/${id}/${IMAGE}`] = { text: data };
  routes['/good-armored/SHA256SUMS'] = { text: sums };
  routes['/good-armored/SHA256SUMS.sign'] = { text: (await detached(sums, distro.privateKey, 'armored')) as string };
  routes['/good-binary/SHA256SUMS'] = { text: sums };
  routes['/good-binary/SHA256SUMS.gpg'] = { text: Buffer.from((await detached(sums, distro.privateKey, 'binary')) as Uint8Array) };
  routes['/good-clear/CHECKSUM'] = { text: await clearsigned(sums, distro.privateKey) };
  // Signed, then a digest changed: what a tampering mirror would serve.
  routes['/tampered/SHA256SUMS'] = { text: tampered };
  routes['/tampered/SHA256SUMS.sign'] = { text: (await detached(sums, distro.privateKey, 'armored')) as string };
  routes['/stranger/SHA256SUMS'] = { text: sums };
  routes['/stranger/SHA256SUMS.sign'] = { text: (await detached(sums, stranger.privateKey, 'armored')) as string };
  routes['/garbled/SHA256SUMS'] = { text: sums };
  routes['/garbled/SHA256SUMS.sign'] = { text: '-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n' };
  routes['/unsigned/SHA256SUMS'] = { text: sums };
  routes['/no-key/SHA256SUMS'] = { text: sums };
  // A clear-signed file with the right digest only outside the signed block: not covered, not used.
  routes['/clear-outside/CHECKSUM'] = { text: `${sha256}  ${IMAGE}\n${await clearsigned(tampered, distro.privateKey)}` };
  srv = await startFileServer(routes);

  resources = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-sig-res-'));
  fs.mkdirSync(path.join(resources, 'catalog'));
  fs.mkdirSync(path.join(resources, 'keys'));
  // The shipped keyring holds both keys; each entry names the one it trusts.
  fs.writeFileSync(path.join(resources, 'keys', 'tiny.asc'), `${distro.publicKey}\n${stranger.publicKey}\n`);
  const signedBy = (kind: 'detached' | 'clearsigned', url?: string) => ({
    kind,
    ...(url ? { url: srv.url(url) } : {}),
    keysUrl: 'https://tiny.example/keys',
    keyring: 'tiny.asc',
    fingerprints: [distro.fingerprint],
  });
  const catalog = {
    version: 1,
    entries: [
      entry('good-armored', '/good-armored/SHA256SUMS', signedBy('detached', '/good-armored/SHA256SUMS.sign')),
      entry('good-binary', '/good-binary/SHA256SUMS', signedBy('detached', '/good-binary/SHA256SUMS.gpg')),
      entry('good-clear', '/good-clear/CHECKSUM', signedBy('clearsigned')),
      entry('tampered', '/tampered/SHA256SUMS', signedBy('detached', '/tampered/SHA256SUMS.sign')),
      entry('stranger', '/stranger/SHA256SUMS', signedBy('detached', '/stranger/SHA256SUMS.sign')),
      entry('garbled', '/garbled/SHA256SUMS', signedBy('detached', '/garbled/SHA256SUMS.sign')),
      entry('unsigned', '/unsigned/SHA256SUMS', { kind: 'none', note: 'Tiny OS signs nothing.' }),
      entry('no-key', '/no-key/SHA256SUMS', { kind: 'detached', url: srv.url('/no-key/SHA256SUMS.sign'), keysUrl: 'https://tiny.example/keys', fingerprints: [distro.fingerprint] }),
      entry('clear-outside', '/clear-outside/CHECKSUM', signedBy('clearsigned')),
    ],
  };
  fs.writeFileSync(path.join(resources, 'catalog', 'os-catalog.json'), JSON.stringify(catalog));
});

afterAll(async () => {
  await srv.close();
  fs.rmSync(resources, { recursive: true, force: true });
});

let t: TestHome;
let m: MediaManager;
let mediaDir: string;
beforeEach(() => {
  t = makeTestHome();
  mediaDir = Layout.fromEnv(t.env).mediaDir;
  m = new MediaManager({ dir: mediaDir, resourcesDir: resources, retryDelayMs: 20, maxRetries: 1 });
  srv.requests.length = 0;
});
afterEach(async () => {
  await m.dispose();
  await t.cleanup();
});

const spaced = (fp: string) => fp.replace(/(.{4})(?=.)/g, '$1 ');

/** Downloads catalog entry `id`; resolves with the file's path or the sentence it failed with. */
async function download(id: string): Promise<{ path: string | null; error: string | null; from: string; verifiedWith: string | null }> {
  const info = await m.download({ source: id });
  try {
    const item = await m.wait(info.id);
    const meta = JSON.parse(fs.readFileSync(path.join(mediaDir, '.meta', `${item.name}.json`), 'utf8')) as { verifiedWith: string };
    return { path: item.path, error: null, from: info.checksum.from, verifiedWith: meta.verifiedWith };
  } catch (e) {
    return { path: null, error: (e as Error).message, from: info.checksum.from, verifiedWith: null };
  }
}

const imageFetched = (id: string) => srv.requests.some((r) => r.path === `/${id}/${IMAGE}`);

describe('signed SUMS files', () => {
  it('accepts a good detached signature, armored or binary, and a clear-signed file, naming the signer', async () => {
    for (const id of ['good-armored', 'good-binary', 'good-clear']) {
      const r = await download(id);
      expect(r.error, id).toBeNull();
      expect(fs.readFileSync(r.path!).equals(data)).toBe(true);
      expect(r.from).toContain(`its signature checked against key ${spaced(distro.fingerprint)}`);
      expect(r.verifiedWith).toContain(`signed by Tiny OS CD signing key <cd@tiny.example> (key ${spaced(distro.fingerprint)})`);
    }
  });

  it('refuses a SUMS file changed after signing, a signature by a key the entry does not name, and a garbled signature; nothing is fetched or kept', async () => {
    const tampered = await download('tampered');
    expect(tampered.error).toMatch(/^The signature of the checksum file http:\/\/127\.0\.0\.1:\d+\/tampered\/SHA256SUMS does not verify: the checksum file does not match its signature\. The file may not be the distro's/);
    const strangers = await download('stranger');
    expect(strangers.error).toMatch(/does not verify: it was made by key [0-9A-F]{16}, which is not one of the distro's signing keys Vivarium expects/);
    const garbled = await download('garbled');
    expect(garbled.error).toMatch(/does not verify: it is not a readable OpenPGP signature/);
    for (const id of ['tampered', 'stranger', 'garbled']) expect(imageFetched(id), id).toBe(false);
    const left = fs.existsSync(mediaDir) ? (fs.readdirSync(mediaDir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(mediaDir, f)).isFile() && !f.endsWith('.lock')) : [];
    expect(left.filter((f) => f.includes(IMAGE) || f.endsWith('.part'))).toEqual([]);
  });

  it('reads a clear-signed file\'s digest only from the signed text', async () => {
    const r = await download('clear-outside');
    // The digest used is the signed (tampered) one, so the real image does not match it.
    expect(r.error).toContain(`${IMAGE} did not match its SHA-256 checksum from CHECKSUM at ${srv.url('/clear-outside/CHECKSUM')}, signed by Tiny OS CD signing key`);
    expect(r.error).toContain(`expected ${createHash('sha256').update('evil').digest('hex')}, got ${sha256}`);
    expect(r.path).toBeNull();
  });

  it('says "checksum not signed" for an entry without a signature, and why a signature is not checked without the key', async () => {
    const unsigned = await download('unsigned');
    expect(unsigned.error).toBeNull();
    expect(unsigned.from).toContain('(checksum not signed: Tiny OS signs nothing.)');
    expect(unsigned.verifiedWith).toContain('(checksum not signed)');
    const noKey = await download('no-key');
    expect(noKey.error).toBeNull();
    expect(noKey.from).toContain(`signed, but Vivarium ships no copy of the signing key (key ${spaced(distro.fingerprint)}), so the signature is not checked`);
    expect(srv.requests.some((r) => r.path === '/no-key/SHA256SUMS.sign')).toBe(false);
  });
});

describe('verifySums and the shipped keys', () => {
  it('throws BadSignature when no expected key is in the keyring', async () => {
    const sig = (await detached(sums, distro.privateKey, 'binary')) as Uint8Array;
    await expect(verifySums(Buffer.from(sums), { kind: 'detached', signature: sig, keyring: Buffer.from(stranger.publicKey), fingerprints: [distro.fingerprint] })).rejects.toBeInstanceOf(BadSignature);
  });

  it('every catalog entry that names a shipped keyring finds each of its fingerprints in it', async () => {
    const repoResources = path.resolve(__dirname, '..', '..', '..', 'resources');
    const catalog = await loadCatalog(path.join(repoResources, 'catalog', 'os-catalog.json'));
    const withKeyring = catalog.entries.filter((e) => (e.signature.kind === 'detached' || e.signature.kind === 'clearsigned') && e.signature.keyring !== undefined);
    expect(withKeyring.map((e) => e.id)).toEqual(expect.arrayContaining(['debian-13-netinst-x86_64', 'debian-13-netinst-aarch64']));
    for (const e of withKeyring) {
      const sig = e.signature as { keyring: string; fingerprints: string[] };
      const keys = await openpgp.readKeys({ armoredKeys: fs.readFileSync(path.join(repoResources, 'keys', sig.keyring), 'utf8') });
      const have = keys.map((k) => k.getFingerprint().toUpperCase());
      expect(sig.fingerprints.length).toBeGreaterThan(0);
      for (const fp of sig.fingerprints) expect(have, `${e.id}: ${fp}`).toContain(fp);
    }
  });
});
