/**
 * `vivarium serial` attaches against a real busybox guest (TCG). QEMU's serial socket serves one
 * client; a second client waits in the listen backlog and whatever it types reaches the guest later.
 * With no engine running, a second attach is therefore refused with a sentence and nothing it typed
 * ever reaches the guest; with an engine running (`vivarium serve`), attaches share the console.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI_BIN, runCli } from '../test-support/cli';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { qemuProcessesUnder } from '../test-support/qemu-procs';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

const cli = (args: string[], input?: string) => runCli(args, { env: t.env, input, timeoutMs: 60_000 });

/** A `vivarium …` process whose stdin stays open until `end()`; collects its output. */
function longCli(args: string[], env: NodeJS.ProcessEnv = t.env) {
  const p: ChildProcessWithoutNullStreams = spawn(process.execPath, [CLI_BIN, ...args], { env, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  return {
    proc: p,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    type: (text: string) => p.stdin.write(text),
    end: () => p.stdin.end(),
    exited,
    /** Resolves once stdout contains `text`; rejects after `ms` with what arrived. */
    async waitFor(text: string, ms = 60_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!stdout.includes(text)) {
        if (p.exitCode !== null) throw new Error(`vivarium ${args.join(' ')} exited (${p.exitCode}) before "${text}": ${stderr}`);
        if (Date.now() > deadline) throw new Error(`no "${text}" from vivarium ${args.join(' ')} in ${ms} ms; stdout: ${stdout} stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

async function startGuest(name: string): Promise<void> {
  const g = testGuest();
  const created = await cli(['create', name, '--accel', 'tcg', '--memory', '256M', '--cpus', '1', '--disk-size', '0', '--net', 'none',
    '--display', 'none', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append]);
  expect(created.code, created.stderr).toBe(0);
  const started = await cli(['start', name, '--wait-serial', g.readyMarker, '--timeout', '90']);
  expect(started.code, started.stderr).toBe(0);
}

describe('vivarium serial with no engine running', () => {
  it('refuses a second attach with a sentence, and nothing it typed ever reaches the guest', { timeout: 300_000 }, async () => {
    await startGuest('console');
    const first = longCli(['serial', 'console']);
    try {
      first.type('echo first-$((20+1))\n');
      await first.waitFor('first-21');

      const second = await cli(['serial', 'console'], 'echo SECOND-$((40+2))\n');
      expect(second.code).toBe(1);
      expect(second.stdout).toBe('');
      expect(second.stderr.trim().split('\n')).toHaveLength(1);
      expect(second.stderr).toMatch(/already attached \(vivarium serial, pid \d+\).*Detach that one first \(Ctrl-\]\), or run `vivarium serve`/);

      // The first attach still works after the refusal.
      first.type('echo still-$((30+3))\n');
      await first.waitFor('still-33');
    } finally {
      first.end();
    }
    expect(await first.exited).toBe(0);

    // Once the first has detached, a new attach gets the console, and the refused one's keystrokes
    // are nowhere: not run by the shell, not echoed.
    const third = await cli(['serial', 'console'], 'echo third-$((50+5))\n');
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout).toContain('third-55');
    const log = await cli(['serial', 'console', '--log']);
    expect(log.stdout).toContain('first-21');
    expect(log.stdout).not.toContain('SECOND');

    const stopped = await cli(['stop', 'console', '--force']);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  });

  it('takes over the attach of a vivarium serial that was killed', { timeout: 300_000 }, async () => {
    await startGuest('orphan');
    const killed = longCli(['serial', 'orphan']);
    killed.type('echo before-$((6*7))\n');
    await killed.waitFor('before-42');
    killed.proc.kill('SIGKILL');
    await killed.exited;

    const next = await cli(['serial', 'orphan'], 'echo after-$((7*8))\n');
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toContain('after-56');
    expect((await cli(['stop', 'orphan', '--force'])).code).toBe(0);
  });
});

describe('vivarium serial with an engine running', () => {
  it('lets two attaches share the console through the engine', { timeout: 300_000 }, async () => {
    await startGuest('shared');
    const serve = longCli(['serve', '--port', '0']);
    try {
      await serve.waitFor('token=', 60_000);
      const a = longCli(['serial', 'shared']);
      const b = longCli(['serial', 'shared']);
      try {
        // Each sees output only from its own attach on (history off), and either may attach later:
        // type from a until b has seen a's command run, then from b.
        const typing = setInterval(() => a.type('echo from-a-$((1+2))\n'), 3000);
        a.type('echo from-a-$((1+2))\n');
        try {
          await b.waitFor('from-a-3', 90_000);
        } finally {
          clearInterval(typing);
        }
        await a.waitFor('from-a-3');
        b.type('echo from-b-$((3+4))\n');
        await a.waitFor('from-b-7');
        await b.waitFor('from-b-7');
      } finally {
        a.end();
        b.end();
      }
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
      expect((await cli(['stop', 'shared', '--force'])).code).toBe(0);
    } finally {
      serve.proc.kill('SIGTERM');
      await serve.exited;
    }
  });
});
