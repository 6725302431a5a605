/**
 * bin/vivarium.js as a person runs it (`vivarium …`: the executable itself, its sh launcher choosing
 * Node and any flags) and what it needs to start quickly (issue 7): for the way it is run (the flags
 * its launcher gives Node, if any, and plain `node bin/vivarium.js`) the build left a V8 code cache that V8
 * accepts. A refused cache is silent (the CLI still works) and costs every command ~35 ms of compiling.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '..', '..');
const BIN = path.join(REPO, 'bin', 'vivarium.js');

/**
 * The Node flags bin/vivarium.js's launcher (its first two lines, read by sh) runs Node with: every
 * `node "$0"` in them, with what stands between.
 */
function launcherFlags(): string[][] {
  const [first, second] = fs.readFileSync(BIN, 'utf8').split('\n', 2);
  expect(first, 'bin/vivarium.js starts with its sh launcher').toBe('#!/bin/sh');
  const runs = [...second!.matchAll(/\bnode((?: --?[^ "]+)*) "\$0" "\$@"/g)].map((m) => m[1]!.trim().split(' ').filter(Boolean));
  expect(runs.length, `the launcher line (${second}) runs node "$0" "$@"`).toBeGreaterThan(0);
  return runs;
}

/** Whether V8, run with `flags`, accepts the code cache bin/vivarium.js would load for them. */
function cacheAccepted(flags: string[]): boolean {
  const probe = `
    const fs = require('node:fs'), vm = require('node:vm'), Module = require('node:module');
    const { cacheFileFor, BUNDLE } = require(${JSON.stringify(BIN)});
    const source = fs.readFileSync(BUNDLE, 'latin1');
    const cache = fs.readFileSync(cacheFileFor(BUNDLE, ${JSON.stringify(flags)}));
    const script = new vm.Script(Module.wrap(source), { filename: BUNDLE, cachedData: cache.subarray(cache.indexOf(10) + 1) });
    process.stdout.write(String(!script.cachedDataRejected));`;
  return execFileSync(process.execPath, [...flags, '-e', probe], { encoding: 'utf8' }) === 'true';
}

describe('bin/vivarium.js', () => {
  it('runs as an executable through its launcher, from any folder and through a symbolic link (as npm installs it)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(execFileSync(BIN, ['--version'], { encoding: 'utf8' }).trim()).toBe(pkg.version);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-bin-'));
    try {
      fs.symlinkSync(BIN, path.join(dir, 'vivarium'));
      const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` };
      expect(execFileSync('vivarium', ['--version'], { encoding: 'utf8', cwd: os.tmpdir(), env }).trim()).toBe(pkg.version);
      // Arguments reach the command as typed (spaces, quotes, a leading dash after --).
      const r = spawnSync('vivarium', ['show', '--', "-a b 'c\""], { encoding: 'utf8', env: { ...env, VIVARIUM_HOME: dir, VIVARIUM_RUNTIME_DIR: path.join(dir, 'run') } });
      expect(r.stderr).toContain(`No VM named or with id "-a b 'c""`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('has a code cache V8 accepts, for the flags its launcher gives Node and for none (node bin/vivarium.js)', () => {
    for (const flags of launcherFlags()) expect(cacheAccepted(flags)).toBe(true);
    expect(cacheAccepted([])).toBe(true);
  });
  it('is plain JavaScript to Node too: the launcher line is a string and a comment', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(execFileSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' }).trim()).toBe(pkg.version);
  });
});
