/**
 * VIVARIUM_RUNTIME_DIR and VIVARIUM_HOME as a user sets them (tester findings 9 and 10): a folder
 * Vivarium did not make is never narrowed, a relative path is refused, and the advice for a wrong
 * path changes the variable, never the file it names. Real folders; the CLI as a real process.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI_BIN } from '../test-support/cli';
import { makeTestHome, type TestHome } from '../test-support/home';
import { Layout, mkdirPrivate, mkdirPrivateAsync, tightenLibrarySync } from './paths';

const mode = (p: string): number => fs.lstatSync(p).mode & 0o7777;
let dir: string;
let t: TestHome;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-rtdir-'));
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a VIVARIUM_RUNTIME_DIR Vivarium did not make', () => {
  it('stays as the user left it (0755, a home folder with its files) while Vivarium uses a 0700 folder of its own below it', () => {
    const fakeHome = path.join(dir, 'home');
    fs.mkdirSync(fakeHome);
    fs.chmodSync(fakeHome, 0o755);
    fs.writeFileSync(path.join(fakeHome, '.bashrc'), '# mine\n');
    const layout = Layout.fromEnv({ HOME: fakeHome, VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: fakeHome });
    layout.ensureRuntimeDir(layout.runtime('6ce73a25-552e-4eec-986a-32d07f2268ea').dir);
    expect(mode(fakeHome)).toBe(0o755);
    expect(mode(layout.runtimeRoot)).toBe(0o700);
    expect(path.dirname(layout.runtimeRoot)).toBe(fakeHome);
    expect(layout.runtimeRootIsOurs()).toBe(true);
    expect(mode(fakeHome)).toBe(0o755);
  });

  it('is refused, not narrowed, when its group may write to it', () => {
    const group = path.join(dir, 'group');
    fs.mkdirSync(group);
    fs.chmodSync(group, 0o775);
    const layout = Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: group });
    expect(() => layout.ensureRuntimeDir(layout.runtimeRoot)).toThrow(/can be written by its group \(mode 0775\).*Set VIVARIUM_RUNTIME_DIR to the absolute path of a folder of your own/);
    expect(mode(group)).toBe(0o775);
    expect(fs.readdirSync(group)).toEqual([]);
  });

  it('a file given as the folder gets advice about the variable, never "Remove it"', () => {
    const file = path.join(dir, 'passwd');
    fs.writeFileSync(file, 'root:x:0:0::/root:/bin/sh\n');
    const layout = Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: file });
    let message = '';
    try {
      layout.ensureRuntimeDir(layout.runtimeRoot);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/passwd is not a directory, so it is not safe for Vivarium's sockets\. Set VIVARIUM_RUNTIME_DIR to/);
    expect(message).not.toMatch(/Remove it/);
    expect(fs.readFileSync(file, 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
  });

  it('a folder Vivarium names itself (below the given one) is still tightened', () => {
    const base = path.join(dir, 'base');
    fs.mkdirSync(base, { mode: 0o700 });
    const layout = Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: base });
    fs.mkdirSync(layout.runtimeRoot);
    fs.chmodSync(layout.runtimeRoot, 0o755);
    layout.ensureRuntimeDir(layout.runtimeRoot);
    expect(mode(layout.runtimeRoot)).toBe(0o700);
  });
});

describe('relative folder variables', () => {
  it('are refused by the layout for both variables, naming the variable and an absolute form', () => {
    expect(() => Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: 'relative' })).toThrow(
      /VIVARIUM_RUNTIME_DIR is "relative", a relative path.*Set it to an absolute path \(e\.g\. VIVARIUM_RUNTIME_DIR="\$PWD\/relative"\)/,
    );
    expect(() => Layout.fromEnv({ VIVARIUM_HOME: 'lib', VIVARIUM_RUNTIME_DIR: dir })).toThrow(/VIVARIUM_HOME is "lib", a relative path/);
  });

  it('`vivarium list` with a relative VIVARIUM_RUNTIME_DIR says so, exits 2 and creates nothing in the current folder', () => {
    const cwd = path.join(dir, 'cwd');
    fs.mkdirSync(cwd);
    const r = spawnSync(process.execPath, [CLI_BIN, 'list'], { env: { ...t.env, VIVARIUM_RUNTIME_DIR: 'relative' }, cwd, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toMatch(/VIVARIUM_RUNTIME_DIR is "relative", a relative path/);
    expect(r.status).toBe(2);
    expect(fs.readdirSync(cwd)).toEqual([]);
  });
});

describe('a VIVARIUM_HOME folder of the user\'s', () => {
  it('keeps its own mode when it holds other things, while Vivarium\'s entries inside it are made private', () => {
    const project = path.join(dir, 'project');
    fs.mkdirSync(project);
    fs.chmodSync(project, 0o755);
    fs.writeFileSync(path.join(project, 'notes.txt'), 'mine\n');
    fs.mkdirSync(path.join(project, 'vms'));
    fs.chmodSync(path.join(project, 'vms'), 0o755);
    expect(mkdirPrivate(project)).toBe(false);
    const r = tightenLibrarySync(project);
    expect(mode(project)).toBe(0o755);
    expect(mode(path.join(project, 'vms'))).toBe(0o700);
    expect(r.tightened.map((x) => x.path)).toEqual([path.join(project, 'vms')]);
  });

  it('a library folder holding only Vivarium\'s entries is still tightened', () => {
    const lib = path.join(dir, 'lib');
    fs.mkdirSync(path.join(lib, 'vms'), { recursive: true });
    fs.writeFileSync(path.join(lib, 'host-probe.json'), '{}');
    fs.chmodSync(lib, 0o755);
    tightenLibrarySync(lib);
    expect(mode(lib)).toBe(0o700);
  });
});

describe('the async forms (ensureRuntimeDirAsync, mkdirPrivateAsync: off the event loop, issue 7)', () => {
  /** Runs `make` on a fresh folder for each form; returns [mode or error message] of both. */
  async function both(setup: (root: string) => string, run: { sync: (d: string) => unknown; async: (d: string) => Promise<unknown> }): Promise<[string, string]> {
    const out: string[] = [];
    for (const form of ['sync', 'async'] as const) {
      const root = path.join(dir, form);
      fs.mkdirSync(root);
      const target = setup(root);
      try {
        const r = form === 'sync' ? run.sync(target) : await run.async(target);
        out.push(`${String(r)} ${mode(target).toString(8)}`);
      } catch (e) {
        out.push((e as Error).message.split(root).join('ROOT'));
      }
    }
    return [out[0]!, out[1]!];
  }
  const rt = (base: string) => Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: base });

  it('ensureRuntimeDirAsync makes, tightens and refuses exactly as ensureRuntimeDir', async () => {
    const cases: ((root: string) => string)[] = [
      (root) => root, // fresh: made 0700 below the given base
      (root) => (fs.chmodSync(root, 0o755), root), // a given 0755 base is left alone
      (root) => (fs.chmodSync(root, 0o775), root), // group-writable given base: refused
      (root) => (fs.writeFileSync(path.join(root, 'f'), ''), path.join(root, 'f')), // a file: refused
      (root) => (fs.mkdirSync(rt(root).runtimeRoot, { mode: 0o755 }), fs.chmodSync(rt(root).runtimeRoot, 0o755), root), // our level: tightened
    ];
    const seen: string[] = [];
    for (const setup of cases) {
      const [s, a] = await both(setup, {
        sync: (base) => (rt(base).ensureRuntimeDir(rt(base).runtimeRoot), mode(rt(base).runtimeRoot).toString(8)),
        async: async (base) => (await rt(base).ensureRuntimeDirAsync(rt(base).runtimeRoot), mode(rt(base).runtimeRoot).toString(8)),
      });
      expect(a).toBe(s);
      seen.push(a);
      fs.rmSync(path.join(dir, 'sync'), { recursive: true, force: true });
      fs.rmSync(path.join(dir, 'async'), { recursive: true, force: true });
    }
    // The runtime root's mode, then the given base's: made 0700, the base left as it was.
    expect(seen[0]).toMatch(/^700 7[05]5$/);
    expect(seen[1]).toBe('700 755');
    expect(seen[2]).toMatch(/can be written by its group \(mode 0775\)/);
    expect(seen[3]).toMatch(/ROOT\/f is not a directory/);
    expect(seen[4]).toBe('700 755');
  });

  it('mkdirPrivateAsync tightens, leaves a folder of the user\'s alone and refuses a link, as mkdirPrivate', async () => {
    const cases: ((root: string) => string)[] = [
      (root) => path.join(root, 'new', 'lib'),
      (root) => (fs.mkdirSync(path.join(root, 'lib')), fs.mkdirSync(path.join(root, 'lib', 'vms')), fs.chmodSync(path.join(root, 'lib'), 0o755), path.join(root, 'lib')),
      (root) => (fs.mkdirSync(path.join(root, 'lib')), fs.writeFileSync(path.join(root, 'lib', 'notes.txt'), ''), fs.chmodSync(path.join(root, 'lib'), 0o755), path.join(root, 'lib')),
      (root) => (fs.mkdirSync(path.join(root, 'real')), fs.symlinkSync(path.join(root, 'real'), path.join(root, 'lib')), path.join(root, 'lib')),
    ];
    const seen: string[] = [];
    for (const setup of cases) {
      const [s, a] = await both(setup, { sync: (d) => mkdirPrivate(d), async: (d) => mkdirPrivateAsync(d) });
      expect(a).toBe(s);
      seen.push(a);
      fs.rmSync(path.join(dir, 'sync'), { recursive: true, force: true });
      fs.rmSync(path.join(dir, 'async'), { recursive: true, force: true });
    }
    expect(seen.slice(0, 3)).toEqual(['false 700', 'true 700', 'false 755']);
    expect(seen[3]).toMatch(/symbolic link/);
  });
});
