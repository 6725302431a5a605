/**
 * `vivarium create … --dry-run` (vms.preview) through the real CLI process: the QEMU command line a
 * create would start with, the same refusals, and nothing written to the library.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../test-support/cli';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(() => t.cleanup());

const cli = (...args: string[]) => runCli(args, { env: t.env, timeoutMs: 60_000 });
const vmsDir = () => path.join(t.home, 'vms');

describe('create --dry-run', () => {
  it('prints the QEMU command line and creates nothing', async () => {
    const g = testGuest();
    const r = await cli('create', 'dry', '--kernel', g.kernel, '--memory', '256M', '--disk-size', '1G', '--accel', 'tcg', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\/\S*qemu-system-(x86_64|aarch64) /);
    expect(r.stdout).toContain(`-kernel ${g.kernel}`);
    expect(r.stdout).toContain(' -m 256 ');
    const json = await cli('create', 'dry', '--disk-size', '0', '--accel', 'tcg', '--dry-run', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ accel: 'tcg', notices: [] });
    expect((await cli('list', '--json')).stdout.trim()).toBe('[]');
    expect(fs.existsSync(vmsDir()) ? fs.readdirSync(vmsDir()) : []).toEqual([]);
  });

  it('refuses what create refuses, with the same exit status', async () => {
    const r = await cli('create', 'dry', '--iso', '/nonexistent/x.iso', '--dry-run');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ISO not found: /nonexistent/x.iso');
    expect(r.stdout).toBe('');
    // A size in binary units, not bytes (tester-9 #2).
    const big = await cli('create', 'dry', '--disk-size', '100T', '--dry-run');
    expect(big.code).toBe(2);
    expect(big.stderr).toBe('vivarium create: --disk-size can be at most 64T (64 TiB), not "100T". Run `vivarium help create` for usage.\n');
  });
});
