/**
 * NODE_EXTRA_CA_CERTS through the `vivarium` executable (bin/vivarium.js's launcher keeps it from
 * Node, which would spend ~38 ms of every command parsing it, and Vivarium's HTTPS client adds its
 * certificates itself: main/services/media/tls-trust.ts). Against a real HTTPS server on 127.0.0.1
 * whose certificate a test authority signs (made with openssl here), the way a company's
 * TLS-inspecting proxy or a private mirror would be set up.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { CLI_BIN } from '../test-support/cli';
import { Layout } from '../services/paths';

const SIZE = 256 * 1024 + 3;
let dir: string;
let caFile: string;
let otherCa: string;
let plain: http.Server;
let data: Buffer;
let sha256: string;
let server: https.Server;
let base: string;
let t: TestHome;

/** Two certificate authorities (A signs the server's certificate, B is unrelated) and a server
 *  certificate for 127.0.0.1, as PEM files in `dir`. */
function makeCertificates(): { caA: string; caB: string; key: string; cert: string } {
  const f = (n: string): string => path.join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const n of ['A', 'B']) {
    ssl('req', '-x509', ...ec, '-keyout', f(`ca${n}.key`), '-out', f(`ca${n}.pem`), '-days', '2', '-subj', `/CN=Vivarium test authority ${n}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  }
  ssl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('caA.pem'), '-CAkey', f('caA.key'), '-CAcreateserial', '-days', '2', '-extfile', f('server.ext'), '-out', f('server.pem'));
  return { caA: f('caA.pem'), caB: f('caB.pem'), key: fs.readFileSync(f('server.key'), 'utf8'), cert: fs.readFileSync(f('server.pem'), 'utf8') };
}

beforeAll(async () => {
  // A space in the path: the launcher must pass the variable's value on whole.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium extra-ca-'));
  const { caA, caB, key, cert } = makeCertificates();
  caFile = caA;
  otherCa = caB;
  data = randomBytes(SIZE);
  sha256 = createHash('sha256').update(data).digest('hex');
  server = https.createServer({ key, cert }, (req, res) => {
    if (req.url === '/tiny.iso') {
      res.writeHead(200, { 'content-length': String(SIZE), 'content-type': 'application/octet-stream' });
      res.end(data);
    } else if (req.url === '/SHA256SUMS') {
      res.end(`${sha256}  tiny.iso\n`);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A plain HTTP server, for an https:// address given to the wrong port.
  plain = http.createServer((_req, res) => res.end('hello'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const srv of [server, plain]) {
    srv.closeAllConnections();
    await new Promise((resolve) => srv.close(resolve));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  t = makeTestHome();
});
afterEach(() => t.cleanup());

/** Runs `command…` (the executable itself, or `node` + the script) with NODE_EXTRA_CA_CERTS as
 *  given (undefined: unset) and `more` in the environment. */
function run(command: readonly string[], extraCa: string | undefined, more: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...t.env, VIVARIUM_NO_ENGINE: '1', ...more };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.VIVARIUM_EXTRA_CA_CERTS;
  if (extraCa !== undefined) env.NODE_EXTRA_CA_CERTS = extraCa;
  return new Promise((resolve) => {
    execFile(command[0]!, command.slice(1), { env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** What `media status` lists (a failed download with nothing downloaded must leave no entry). */
async function status(): Promise<unknown[]> {
  return JSON.parse((await run([CLI_BIN, 'media', 'status', '--json'], undefined)).stdout) as unknown[];
}

const download = (): string[] => ['media', 'download', `${base}/tiny.iso`, '--sums', `${base}/SHA256SUMS`, '--json'];
const downloaded = (): string[] => fs.readdirSync(Layout.fromEnv(t.env).mediaDir).filter((f) => !f.startsWith('.'));

describe('NODE_EXTRA_CA_CERTS', () => {
  it('is trusted by downloads through the vivarium executable (image and SUMS file over HTTPS)', async () => {
    const r = await run([CLI_BIN, ...download()], caFile);
    expect(r.stderr).not.toContain('could not reach');
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout) as { path: string; sha256: string };
    expect(got.sha256).toBe(sha256);
    expect(fs.readFileSync(got.path).equals(data)).toBe(true);
  });

  it('is trusted when Node itself loads it (node bin/vivarium.js, no launcher)', async () => {
    const r = await run([process.execPath, CLI_BIN, ...download()], caFile);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { sha256: string }).sha256).toBe(sha256);
  });

  it('without it, the download stops at once with a sentence that names the variable, leaving nothing behind', async () => {
    const started = Date.now();
    const r = await run([CLI_BIN, ...download()], undefined);
    expect(r.code).toBe(1);
    // The SUMS file is fetched first: the sentence says which file and which host.
    expect(r.stderr).toContain(`did not trust 127.0.0.1:${new URL(base).port} for the checksum file: its certificate is not signed by an authority this computer trusts`);
    expect(r.stderr).toContain("name that authority's certificate file (PEM) in NODE_EXTRA_CA_CERTS for the process that downloads: the command, or the app or server when one runs (restart it)");
    expect(r.stderr).toContain('Nothing was downloaded; run the same download again once that is fixed.');
    // Not retried with backoff (5 retries would take 15 s): a certificate does not change by waiting.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(downloaded()).toEqual([]);
    expect(await status()).toEqual([]);
  });

  it('naming another authority says that file does not hold the one that signed the server', async () => {
    const r = await run([CLI_BIN, 'media', 'download', `${base}/tiny.iso`, '--sha256', sha256], otherCa);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`did not trust 127.0.0.1:${new URL(base).port} for the file: its certificate is not signed by an authority this computer trusts`);
    expect(r.stderr).toContain(`nor by one in ${otherCa} (NODE_EXTRA_CA_CERTS): that file must hold the certificate of the authority that signed this server's`);
  });

  it('adds to the authorities Node trusts, also to the system store a person chose with --use-openssl-ca', async () => {
    // The server's authority is in the "system" store (SSL_CERT_FILE); NODE_EXTRA_CA_CERTS names
    // another. Replacing the store with Node's bundled authorities plus the file would lose it.
    const r = await run([CLI_BIN, 'media', 'download', `${base}/tiny.iso`, '--sha256', sha256, '--json'], otherCa, { NODE_OPTIONS: '--use-openssl-ca', SSL_CERT_FILE: caFile });
    expect(r.stderr).not.toContain('did not trust');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { sha256: string }).sha256).toBe(sha256);
  });

  it('an https:// address on a plain HTTP port stops at once and says so', async () => {
    const port = (plain.address() as AddressInfo).port;
    const started = Date.now();
    const r = await run([CLI_BIN, 'media', 'download', `https://127.0.0.1:${port}/tiny.iso`, '--sha256', sha256], caFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`could not download the file from 127.0.0.1:${port}: it does not answer HTTPS there`);
    expect(r.stderr).toContain('is the address http://, or the port another?');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await status()).toEqual([]);
  });

  it('programs Vivarium starts (here QEMU) get it back as the person set it', async () => {
    const vm = ['--accel', 'tcg', '--memory', '64M', '--cpus', '1', '--display', 'none', '--net', 'none', '--disk-size', '0'];
    expect((await run([CLI_BIN, 'create', 'env-probe', ...vm], caFile)).code).toBe(0);
    const started = await run([CLI_BIN, 'start', 'env-probe', '--json'], caFile);
    expect(started.code).toBe(0);
    const pid = (JSON.parse(started.stdout) as { pid: number }).pid;
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      expect(environ).toContain(`NODE_EXTRA_CA_CERTS=${caFile}`);
      // Only the person's variable: the launcher's own is not passed on.
      expect(environ.filter((v) => v.startsWith('VIVARIUM_EXTRA_CA_CERTS='))).toEqual([]);
    } finally {
      expect((await run([CLI_BIN, 'stop', 'env-probe', '--force'], caFile)).code).toBe(0);
    }
  });

  it('a file it names that cannot be read is said, and Node does not warn about it first', async () => {
    const missing = path.join(dir, 'no-such-bundle.pem');
    const r = await run([CLI_BIN, ...download()], missing);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`NODE_EXTRA_CA_CERTS names ${missing}, which could not be read (ENOENT), so it was not used`);
    // Node's own start-up warning ("Warning: Ignoring extra certs from …") would mean Node parsed the
    // file before Vivarium ran: the launcher kept the variable from it.
    expect(r.stderr).not.toContain('Ignoring extra certs');
    const plain = await run([CLI_BIN, '--version'], missing);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toBe('');
  });
});
