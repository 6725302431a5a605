/**
 * A `vivarium create` killed mid-way leaves its half-made bundle in a staging folder of the library;
 * the next CLI command that hosts its own engine clears it (not only a long-running engine), and
 * the half-made VM never shows up.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { CLI_BIN, runCli, runCliJson } from '../test-support/cli';
import { makeTestHome, type TestHome } from '../test-support/home';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

/** Runs `vivarium create NAME` and SIGKILLs it as soon as a new hidden entry appears in the library;
 *  resolves with that entry's name, or null when the create finished first. */
async function killCreateMidway(vmsDir: string, name: string): Promise<string | null> {
  const before = new Set(fs.readdirSync(vmsDir));
  const child = spawn(process.execPath, [CLI_BIN, 'create', name, '--disk-size', '64M', '--display', 'none', '--accel', 'tcg'], {
    env: t.env,
    stdio: 'ignore',
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let seen: string | null = null;
  const watcher = fs.watch(vmsDir, () => {
    if (seen) return;
    const hidden = fs.readdirSync(vmsDir).find((n) => n.startsWith('.') && !before.has(n));
    if (hidden) {
      seen = hidden;
      child.kill('SIGKILL');
    }
  });
  await exited;
  watcher.close();
  return seen && fs.existsSync(path.join(vmsDir, seen)) ? seen : null;
}

it('clears the staging folder of a create that was killed, at the next command', async () => {
  // A first VM makes the library folder (and warms the host probe's cache).
  expect((await runCli(['create', 'first', '--disk-size', '0', '--display', 'none', '--accel', 'tcg'], { env: t.env })).code).toBe(0);
  const first = await runCliJson<{ path: string }>(['show', 'first', '--json'], { env: t.env });
  const vmsDir = path.dirname(first.path);

  let leftover: string | null = null;
  for (let attempt = 0; attempt < 10 && !leftover; attempt++) leftover = await killCreateMidway(vmsDir, `killed-${attempt}`);
  expect(leftover, 'no create was caught mid-way in 10 tries').not.toBeNull();

  const listed = await runCliJson<{ name: string }[]>(['list', '--json'], { env: t.env });
  expect(listed.map((v) => v.name)).toEqual(['first']);
  expect(fs.readdirSync(vmsDir).filter((n) => n.startsWith('.'))).toEqual([]);
});
