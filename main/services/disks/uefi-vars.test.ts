/**
 * A UEFI VM whose variable store (efivars.qcow2) was deleted, damaged or made unusable: the start
 * rebuilds it from the firmware's template (real OVMF, real qemu-img), tells the person their UEFI
 * settings were reset, and real QEMU then starts with it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, VivariumError } from '../../common/errors';
import { CONFIG_VERSION, VmConfig } from '../../common/models/vm-config';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { Layout } from '../paths';
import { buildQemuArgs } from '../qemu/argv';
import { probeHost } from '../qemu/host-probe';
import { QemuImg } from './qemu-img';
import { ensureUefiVars, makeUefiVars } from './uefi-vars';

let t: TestHome;
let layout: Layout;
let qemu: ChildProcess | null = null;
const immutable: string[] = [];

beforeEach(() => {
  t = makeTestHome();
  layout = Layout.fromEnv(t.env);
});

afterEach(async () => {
  const q = qemu;
  qemu = null;
  if (q && q.exitCode === null && q.signalCode === null) {
    const gone = new Promise((r) => q.once('exit', r));
    q.kill('SIGKILL');
    await gone;
  }
  for (const f of immutable.splice(0)) execFileSync('chattr', ['-i', f]);
  await t.cleanup();
});

async function setup() {
  const caps = await probeHost({ env: t.env });
  const fw = caps.firmware.x86_64;
  if (!fw || !caps.qemuImg || !caps.binaries.x86_64) throw new Error('needs qemu-system-x86_64, qemu-img and OVMF (apt install qemu-system-x86 qemu-utils ovmf)');
  const config = VmConfig.parse({
    version: CONFIG_VERSION,
    id: 'efe0a7a1-0000-4000-8000-00000000e71a',
    name: 'Uefi',
    createdAt: '2025-01-01T00:00:00.000Z',
    arch: 'x86_64',
    accel: 'tcg',
    cpus: 1,
    memoryMiB: 256,
    firmware: 'uefi',
    uefiVars: 'efivars.qcow2',
    network: { mode: 'none', mac: '52:54:00:ef:e0:a7' },
    display: 'none',
  });
  const paths = layout.paths(config.id);
  fs.mkdirSync(paths.bundle.dir, { recursive: true });
  const qemuImg = new QemuImg(caps.qemuImg);
  await makeUefiVars(qemuImg, fw, paths.bundle.file('efivars.qcow2'));
  return { caps, fw, config, paths, qemuImg, vars: paths.bundle.file('efivars.qcow2') };
}

/** QMP query-status of a running QEMU, through its socket. */
async function queryStatus(socket: string): Promise<string> {
  const conn = net.connect(socket);
  try {
    return await new Promise<string>((resolve, reject) => {
      let buf = '';
      let step = 0;
      conn.setEncoding('utf8');
      conn.on('error', reject);
      conn.on('data', (d: string) => {
        buf += d;
        if (step === 0 && buf.includes('"QMP"')) {
          step = 1;
          conn.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n');
        }
        const m = /"status": "([a-z-]+)"/.exec(buf);
        if (m?.[1]) resolve(m[1]);
      });
    });
  } finally {
    conn.destroy();
  }
}

describe('the UEFI variable store is rebuilt when missing or unusable', () => {
  it('a sound store is left alone', async () => {
    const s = await setup();
    const before = fs.statSync(s.vars).mtimeMs;
    expect(await ensureUefiVars(s.config, s.paths.bundle, s.fw, s.qemuImg)).toBeNull();
    expect(fs.statSync(s.vars).mtimeMs).toBe(before);
  });

  it('a deleted store is recreated from the template, the person is told, and QEMU starts with it', async () => {
    const s = await setup();
    fs.rmSync(s.vars);
    const notice = await ensureUefiVars(s.config, s.paths.bundle, s.fw, s.qemuImg);
    expect(notice).toEqual({
      fault: 'missing',
      keptAs: null,
      message: 'The UEFI settings store of "Uefi" was missing, so Vivarium made a new one from the firmware\'s defaults: the VM\'s UEFI settings (boot entries, boot order) were reset.',
    });
    expect((await s.qemuImg.info(s.vars, { format: 'qcow2' })).virtualSize).toBe(fs.statSync(s.fw.varsTemplate).size);
    // No temp file left behind.
    expect(fs.readdirSync(s.paths.bundle.dir)).toEqual(['efivars.qcow2']);

    // Real QEMU with real OVMF starts on the rebuilt store (UEFI boot itself takes 10-25 s under TCG).
    layout.ensureRuntimeDir(s.paths.runtime.dir);
    const plan = buildQemuArgs(s.config, s.caps, s.paths);
    let stderr = '';
    const q = spawn(plan.binary, [...plan.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    qemu = q;
    q.stderr?.setEncoding('utf8');
    q.stderr?.on('data', (d: string) => (stderr += d));
    const deadline = Date.now() + 15_000;
    while (!fs.existsSync(s.paths.runtime.qmp) && q.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1500));
    expect(q.exitCode, `QEMU exited: ${stderr}`).toBeNull();
    expect(await queryStatus(s.paths.runtime.qmp)).toBe('running');
    expect(stderr).not.toMatch(/error/i);
  });

  it('a damaged store (not a qcow2 any more) is moved aside, kept, and rebuilt', async () => {
    const s = await setup();
    fs.writeFileSync(s.vars, 'garbage');
    const notice = await ensureUefiVars(s.config, s.paths.bundle, s.fw, s.qemuImg, new Date('2026-01-02T03:04:05.678Z'));
    const kept = `${s.vars}.broken-2026-01-02T03-04-05-678Z`;
    expect(notice).toMatchObject({ fault: 'damaged', keptAs: kept });
    expect(notice?.message).toContain('was damaged, so Vivarium made a new one');
    expect(notice?.message).toContain(`The old file was kept as ${kept}.`);
    expect(fs.readFileSync(kept, 'utf8')).toBe('garbage');
    expect((await s.qemuImg.info(s.vars, { format: 'qcow2' })).format).toBe('qcow2');
  });

  it('a store that cannot be written and cannot be moved aside is a sentence, not a QEMU error', async () => {
    const s = await setup();
    // Root ignores file modes; an immutable file refuses writes and renames even to root.
    if (process.getuid?.() === 0) {
      execFileSync('chattr', ['+i', s.vars]);
      immutable.push(s.vars);
    } else {
      fs.chmodSync(s.vars, 0o444);
      fs.chmodSync(s.paths.bundle.dir, 0o555);
    }
    let caught: unknown;
    try {
      await ensureUefiVars(s.config, s.paths.bundle, s.fw, s.qemuImg);
    } catch (e) {
      caught = e;
    } finally {
      if (process.getuid?.() !== 0) fs.chmodSync(s.paths.bundle.dir, 0o755);
    }
    expect(caught).toBeInstanceOf(VivariumError);
    const err = caught as VivariumError;
    expect(err.code).toBe(ErrorCode.InvalidState);
    expect(err.message).toContain('could not be read and written, and Vivarium cannot move it aside to make a new one');
  });

  it('BIOS VMs have no store to check', async () => {
    const s = await setup();
    const bios = VmConfig.parse({ ...s.config, firmware: 'bios', uefiVars: null });
    expect(await ensureUefiVars(bios, s.paths.bundle, s.fw, s.qemuImg)).toBeNull();
  });
});
