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
let data: Buffer;
let sha256: string;
let server: https.Server;
let base: string;
let t: TestHome;

/** A certificate authority and a server certificate for 127.0.0.1 that it signs, as PEM files in `dir`. */
function makeCertificates(): { ca: string; key: string; cert: string } {
  const f = (n: string): string => path.join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'),
    '-days', '2', '-subj', '/CN=Vivarium test authority', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('server.ext'), '-out', f('server.pem'));
  return { ca: f('ca.pem'), key: fs.readFileSync(f('server.key'), 'utf8'), cert: fs.readFileSync(f('server.pem'), 'utf8') };
}

beforeAll(async () => {
  // A space in the path: the launcher must pass the variable's value on whole.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium extra-ca-'));
  const { ca, key, cert } = makeCertificates();
  caFile = ca;
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
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  t = makeTestHome();
});
afterEach(() => t.cleanup());

/** Runs `command…` (the executable itself, or `node` + the script) with `extra` in the environment
 *  and NODE_EXTRA_CA_CERTS as given (undefined: unset). */
function run(command: readonly string[], extraCa: string | undefined): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...t.env, VIVARIUM_NO_ENGINE: '1' };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.VIVARIUM_EXTRA_CA_CERTS;
  if (extraCa !== undefined) env.NODE_EXTRA_CA_CERTS = extraCa;
  return new Promise((resolve) => {
    execFile(command[0]!, command.slice(1), { env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
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

  it('without it, the download stops at once with a sentence that names the variable, keeping nothing it cannot use', async () => {
    const started = Date.now();
    const r = await run([CLI_BIN, ...download()], undefined);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`could not reach 127.0.0.1:${new URL(base).port}: its certificate is not signed by an authority this computer trusts`);
    expect(r.stderr).toContain('name that certificate file (PEM) in NODE_EXTRA_CA_CERTS');
    // Not retried with backoff (5 retries would take 15 s): a certificate does not change by waiting.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(downloaded()).toEqual([]);
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
