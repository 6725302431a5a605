/**
 * bin/vivarium.js as a person runs it (`vivarium …`: the executable itself, its first line choosing
 * Node and any flags) and what it needs to start quickly (issue 7): for the way it is run (the first
 * line's flags, if any, and plain `node bin/vivarium.js`) the build left a V8 code cache that V8
 * accepts. A refused cache is silent (the CLI still works) and costs every command ~35 ms of compiling.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '..', '..');
const BIN = path.join(REPO, 'bin', 'vivarium.js');

/** The Node flags bin/vivarium.js's first line asks for (`#!/usr/bin/env node`, or `env -S node FLAGS`). */
function shebangFlags(): string[] {
  const first = fs.readFileSync(BIN, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env (?:node|-S node((?: --[^ ]+)*))\s*$/.exec(first);
  expect(m, `bin/vivarium.js's first line (${first}) runs node through env`).not.toBeNull();
  return (m![1] ?? '').trim().split(' ').filter(Boolean);
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
  it('runs as an executable through its first line', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(execFileSync(BIN, ['--version'], { encoding: 'utf8' }).trim()).toBe(pkg.version);
  });
  it('has a code cache V8 accepts, with the first line\'s flags and without', () => {
    expect(cacheAccepted(shebangFlags())).toBe(true);
    expect(cacheAccepted([])).toBe(true);
  });
});
