/**
 * tls-trust.ts: what an HTTPS download trusts when the `vivarium` launcher kept NODE_EXTRA_CA_CERTS
 * from Node. (Downloads through it, against a real HTTPS server: main/cli/extra-ca-certs.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsTrust } from './tls-trust';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-tls-trust-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('httpsTrust', () => {
  it('adds nothing when no file was kept from Node', async () => {
    expect(await httpsTrust(null)).toEqual({ file: null, problem: null });
  });

  it('says why a file is not used, and reads it again next time (the person may have fixed it)', async () => {
    const file = path.join(dir, 'corp-ca.pem');
    const missing = await httpsTrust(file);
    expect(missing.secureContext).toBeUndefined();
    expect(missing.problem).toBe(`NODE_EXTRA_CA_CERTS names ${file}, which could not be read (ENOENT), so it was not used`);
    fs.writeFileSync(file, 'not a certificate\n');
    expect((await httpsTrust(file)).problem).toBe(`NODE_EXTRA_CA_CERTS names ${file}, which holds no PEM certificate, so it was not used`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'ca.key'), '-out', file, '-days', '1', '-subj', '/CN=test'], { stdio: 'pipe' });
    const used = await httpsTrust(file);
    expect(used.problem).toBeNull();
    expect(used.file).toBe(file);
    expect(used.secureContext).toBeDefined();
    // Kept for the process's life once used, as Node keeps its own.
    expect(await httpsTrust(file)).toBe(used);
    expect((await httpsTrust(dir)).problem).toBe(`NODE_EXTRA_CA_CERTS names ${dir}, which is not a file, so it was not used`);
  });
});
