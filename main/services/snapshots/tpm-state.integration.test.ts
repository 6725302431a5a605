/**
 * A VM's TPM state (swtpm's files in its folder's `tpm/`) travels with it: export → import, a full
 * clone and a linked clone each give the new VM byte-identical TPM state files (0600 in a 0700
 * `tpm/`), so a guest that sealed a key to its TPM (Windows with BitLocker) does not ask for its
 * recovery key. A crafted export naming `tpm/../x`, or holding a link as a TPM file, is refused with
 * a sentence and leaves nothing. Real swtpm and QEMU (TCG) booting the busybox test guest.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { endEngineTest } from '../../test-support/engine-home';
import { processesMentioning } from '../../test-support/qemu-procs';
import { createEngine, type Engine } from '../engine';
import { listTar } from '../imports/tar';
import { MANIFEST } from './bundle-archive';

let t: TestHome;
let engine: Engine;

beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env, log: () => undefined });
});

afterEach(async () => {
  await endEngineTest(engine, t);
});

const MiB = 1024 * 1024;

/** The files of a VM's `tpm/` folder (swtpm's state, its lock file left out) with their bytes. */
function tpmFiles(id: string): Map<string, Buffer> {
  const dir = path.join(engine.layout.bundle(id).dir, 'tpm');
  const out = new Map<string, Buffer>();
  for (const n of fs.readdirSync(dir).filter((n) => n.startsWith('tpm2-')).sort()) out.set(n, fs.readFileSync(path.join(dir, n)));
  return out;
}

function expectSameTpm(id: string, source: Map<string, Buffer>): void {
  const dir = path.join(engine.layout.bundle(id).dir, 'tpm');
  expect(fs.lstatSync(dir).mode & 0o777).toBe(0o700);
  const got = tpmFiles(id);
  expect([...got.keys()]).toEqual([...source.keys()]);
  for (const [n, bytes] of source) {
    expect(got.get(n)!.equals(bytes)).toBe(true);
    expect(fs.lstatSync(path.join(dir, n)).mode & 0o777).toBe(0o600);
  }
}

/** A stopped VM with a TPM that has booted the test guest once (so swtpm wrote its state). */
async function tpmVm(name: string): Promise<{ id: string; tpm: Map<string, Buffer> }> {
  const g = testGuest();
  const vm = await engine.manager.create({ name, accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 16 * MiB, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none', tpm: true });
  await engine.manager.start(vm.id, { waitSerial: g.readyMarker, timeoutSec: 150 });
  await engine.manager.stop(vm.id, { force: true });
  const stateDir = path.join(engine.layout.bundle(vm.id).dir, 'tpm');
  const deadline = Date.now() + 10_000;
  while (processesMentioning(stateDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(processesMentioning(stateDir)).toEqual([]);
  const tpm = tpmFiles(vm.id);
  // swtpm wrote the TPM's persistent state (endorsement seed and the rest): what BitLocker's key is sealed under.
  expect(tpm.get('tpm2-00.permall')?.length ?? 0).toBeGreaterThan(0);
  return { id: vm.id, tpm };
}

describe('TPM state travels with the VM', () => {
  it('export → import, a full clone and a linked clone: byte-identical TPM state, owner-only', async () => {
    const src = await tpmVm('tpm-src');
    const file = path.join(t.home, 'tpm-src.vivarium');
    await engine.services.snapshots.exportVm('tpm-src', file);
    const members = (await listTar(file)).map((m) => m.name);
    expect(members).toContain('tpm/tpm2-00.permall');

    const imported = await engine.services.snapshots.importVm(file, { name: 'tpm-imported' });
    expect(imported.config!.tpm).toBe(true);
    expectSameTpm(imported.id, src.tpm);

    const full = await engine.services.snapshots.clone('tpm-src', { name: 'tpm-full', linked: false });
    expectSameTpm(full.id, src.tpm);
    const linked = await engine.services.snapshots.clone('tpm-src', { name: 'tpm-linked', linked: true });
    expectSameTpm(linked.id, src.tpm);
    // The source keeps its own state, untouched.
    expectSameTpm(src.id, src.tpm);

    // The imported copy starts with the carried state: swtpm takes it (the guest boots).
    const g = testGuest();
    const started = await engine.manager.start(imported.id, { waitSerial: g.readyMarker, timeoutSec: 150 });
    expect(started.state).toBe('running');
    await engine.manager.stop(imported.id, { force: true });
  });

  it('a crafted export naming tpm/../x, or holding a link as a TPM file, is refused and leaves nothing', async () => {
    const src = await tpmVm('tpm-src');
    const file = path.join(t.home, 'tpm-src.vivarium');
    await engine.services.snapshots.exportVm('tpm-src', file);
    const before = fs.readdirSync(engine.layout.bundlesDir).sort();
    expect(before).toEqual([src.id]);

    /** The export unpacked, `edit` applied to its folder, the manifest's files listed as `names` with matching checksums, packed again. */
    const craft = (label: string, edit: (dir: string) => void, names: (listed: string[]) => string[]): string => {
      const dir = fs.mkdtempSync(path.join(t.home, `craft-${label}-`));
      execFileSync('tar', ['-xf', file, '-C', dir]);
      edit(dir);
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as { files: { name: string; size: number; sha256: string }[] };
      manifest.files = names(manifest.files.map((f) => f.name)).map((name) => {
        const p = path.join(dir, name);
        const bytes = fs.lstatSync(p).isSymbolicLink() ? Buffer.alloc(0) : fs.readFileSync(p);
        return { name, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
      });
      fs.writeFileSync(path.join(dir, MANIFEST), JSON.stringify(manifest));
      const out = path.join(t.home, `${label}.vivarium`);
      // -P: the member names as given (GNU tar would drop a `tpm/../` prefix otherwise).
      execFileSync('tar', ['-P', '-cf', out, '-C', dir, ...manifest.files.map((f) => f.name), MANIFEST]);
      return out;
    };
    const refused = async (archive: string): Promise<string> => {
      const e = (await engine.services.snapshots.importVm(archive, { name: 'crafted' }).then(
        () => null,
        (x: unknown) => x as { code: string; message: string },
      ))!;
      expect(e).not.toBeNull();
      expect(e.code).toBe('invalid-argument');
      expect(fs.readdirSync(engine.layout.bundlesDir).sort()).toEqual(before);
      expect((await engine.manager.list()).map((v) => v.name)).toEqual(['tpm-src']);
      return e.message;
    };

    const dotdot = craft(
      'dotdot',
      (dir) => fs.writeFileSync(path.join(dir, 'x'), 'escaped'),
      (listed) => [...listed, 'tpm/../x'],
    );
    expect((await listTar(dotdot)).map((m) => m.name)).toContain('tpm/../x');
    expect(await refused(dotdot)).toBe(
      `${dotdot} cannot be imported: its manifest names a file that does not belong in a VM's folder (a path outside it, or an unknown name). Nothing was imported; export the VM again or use another copy of the file.`,
    );
    expect(fs.existsSync(path.join(engine.layout.bundlesDir, 'x'))).toBe(false);

    const link = craft(
      'link',
      (dir) => {
        fs.rmSync(path.join(dir, 'tpm', 'tpm2-00.permall'));
        fs.symlinkSync('/etc/passwd', path.join(dir, 'tpm', 'tpm2-00.permall'));
      },
      (listed) => listed,
    );
    expect(await refused(link)).toBe(
      `${link} cannot be imported: it holds "tpm/tpm2-00.permall", which is a link; a Vivarium export holds only plain files. Nothing was imported; export the VM again or use another copy of the file.`,
    );

    // Any other name under tpm/ (swtpm's lock file, a name of one's own) is not a TPM state file.
    const other = craft(
      'other',
      (dir) => fs.writeFileSync(path.join(dir, 'tpm', 'notes'), 'x'),
      (listed) => [...listed, 'tpm/notes'],
    );
    expect(await refused(other)).toMatch(/its manifest names a file that does not belong in a VM's folder/);
  });
});
