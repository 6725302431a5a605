import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_BIN, parseCliJson, runNodeScript } from './cli';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, body);
  return file;
}

describe('runNodeScript', () => {
  it('passes args, env and stdin, and returns the exit code and both streams', async () => {
    const s = script(
      'echo.js',
      `let input = '';
       process.stdin.on('data', (d) => (input += d));
       process.stdin.on('end', () => {
         process.stdout.write(JSON.stringify({ args: process.argv.slice(2), home: process.env.VIVARIUM_HOME, input }));
         process.stderr.write('to stderr');
         process.exitCode = 3;
       });`,
    );
    const r = await runNodeScript(s, ['list', '--json'], { env: { ...process.env, VIVARIUM_HOME: '/x' }, input: 'typed' });
    expect(r.code).toBe(3);
    expect(r.signal).toBeNull();
    expect(JSON.parse(r.stdout)).toEqual({ args: ['list', '--json'], home: '/x', input: 'typed' });
    expect(r.stderr).toBe('to stderr');
  });

  it('closes stdin when there is no input, so a reader does not hang', async () => {
    const s = script('drain.js', `process.stdin.resume(); process.stdin.on('end', () => console.log('eof'));`);
    const r = await runNodeScript(s, [], { env: process.env, timeoutMs: 10_000 });
    expect(r.stdout.trim()).toBe('eof');
  });

  it('kills the process and rejects on timeout', async () => {
    const s = script('hang.js', `console.log('started'); setInterval(() => {}, 1000);`);
    await expect(runNodeScript(s, [], { env: process.env, timeoutMs: 500 })).rejects.toThrow(/timed out after 500 ms[\s\S]*started/);
  });
});

describe('parseCliJson', () => {
  const ok = { code: 0, signal: null, stdout: '{"a":1}', stderr: '' } as const;
  it('parses stdout of a successful run', () => {
    expect(parseCliJson<{ a: number }>('vivarium x', ok)).toEqual({ a: 1 });
  });
  it('throws with stderr when the command failed', () => {
    expect(() => parseCliJson('vivarium x', { ...ok, code: 2, stderr: 'No VM named "x".' })).toThrow(/exited with 2[\s\S]*No VM named/);
  });
  it('throws when stdout is not JSON', () => {
    expect(() => parseCliJson('vivarium x', { ...ok, stdout: 'hello' })).toThrow(/printed no JSON[\s\S]*hello/);
  });
});

it('points at bin/vivarium.js in the repo', () => {
  expect(path.relative(path.resolve(__dirname, '../..'), CLI_BIN)).toBe(path.join('bin', 'vivarium.js'));
});
