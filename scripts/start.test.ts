/**
 * `npm start` without an Electron binary: one Vivarium sentence that points to `vivarium serve`, not
 * the electron package's stack trace. The binary is really missing on the test machines; the process
 * tests also point ELECTRON_OVERRIDE_DIST_PATH (honoured by the electron package) at an empty folder,
 * so they read the same wherever Electron happens to be installed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findElectron, noElectronMessage } from './start.mjs';

const REPO = path.resolve(__dirname, '..');
let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-start-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A folder laid out like node_modules/electron after its install step (or before it). */
function fakePackage(o: { pathTxt?: string; binary?: boolean }): string {
  const dir = path.join(tmp, 'electron');
  fs.mkdirSync(path.join(dir, 'dist'), { recursive: true });
  if (o.pathTxt !== undefined) fs.writeFileSync(path.join(dir, 'path.txt'), o.pathTxt);
  if (o.binary) fs.writeFileSync(path.join(dir, 'dist', o.pathTxt ?? 'electron'), '#!/bin/sh\n', { mode: 0o755 });
  return dir;
}

describe('findElectron', () => {
  it('finds the binary that path.txt names inside dist/', () => {
    const dir = fakePackage({ pathTxt: 'electron', binary: true });
    expect(findElectron({ packageDir: dir, env: {} })).toEqual({ path: path.join(dir, 'dist', 'electron') });
  });

  it('says why there is none: no package, no download, a missing file', () => {
    expect(findElectron({ packageDir: null, env: {} })).toEqual({ missing: 'the electron package is not installed' });
    expect(findElectron({ packageDir: fakePackage({}), env: {} })).toEqual({ missing: "Electron's binary was not downloaded" });
    const dir = fakePackage({ pathTxt: 'electron' });
    expect(findElectron({ packageDir: dir, env: {} }).missing).toMatch(/binary is missing \(.*dist\/electron\)/);
  });

  it('honours ELECTRON_OVERRIDE_DIST_PATH as the electron package does', () => {
    const dir = fakePackage({ pathTxt: 'electron' });
    const other = path.join(tmp, 'other');
    fs.mkdirSync(other);
    expect(findElectron({ packageDir: dir, env: { ELECTRON_OVERRIDE_DIST_PATH: other } }).missing).toMatch(/binary is missing/);
    fs.writeFileSync(path.join(other, 'electron'), '');
    expect(findElectron({ packageDir: dir, env: { ELECTRON_OVERRIDE_DIST_PATH: other } })).toEqual({ path: path.join(other, 'electron') });
  });
});

describe('npm start without Electron', () => {
  const env = () => ({ ...process.env, ELECTRON_OVERRIDE_DIST_PATH: tmp });

  it('the wrapper ends in one sentence pointing to vivarium serve, without building or downloading', () => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'start.mjs')], { env: env(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(noElectronMessage(`Electron's binary is missing (${path.join(tmp, 'electron')})`));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/`vivarium serve`/);
    expect(r.stderr).not.toMatch(/\n\s+at |Error:|Downloading/);
  });

  it('is what `npm start` runs, and npm adds nothing after the sentence', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node scripts/start.mjs');
    const r = spawnSync('npm', ['start'], { cwd: REPO, env: env(), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(/^vivarium: the desktop app cannot open: .* `npm run serve` \(that is `vivarium serve`\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
