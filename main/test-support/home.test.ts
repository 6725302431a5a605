import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTestHome, pidfilePids, type TestHome } from './home';
import { isAlive, qemuProcessesUnder } from './qemu-procs';

const started: ChildProcess[] = [];
let t: TestHome | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
  for (const c of started.splice(0)) if (c.pid && isAlive(c.pid)) c.kill('SIGKILL');
});

function launch(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  // Detached, like the engine starts QEMU: not in our process group.
  const c = spawn(cmd, args, { env, detached: true, stdio: 'ignore' });
  c.unref();
  started.push(c);
  return c;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('makeTestHome', () => {
  it('gives private, short folders and an env that points at them', async () => {
    t = makeTestHome();
    const { home, runtimeDir, env } = t;
    expect(env.VIVARIUM_HOME).toBe(home);
    expect(env.VIVARIUM_RUNTIME_DIR).toBe(runtimeDir);
    expect(env.PATH).toBe(process.env.PATH);
    expect(runtimeDir).toMatch(/^\/tmp\/viv-/);
    expect(runtimeDir.length).toBeLessThan(20);
    expect(fs.statSync(runtimeDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(home).mode & 0o777).toBe(0o700);
    fs.writeFileSync(path.join(home, 'x'), 'y');
    await t.cleanup();
    expect(fs.existsSync(home)).toBe(false);
    expect(fs.existsSync(runtimeDir)).toBe(false);
    await t.cleanup(); // twice is fine
  });

  it('kills a detached QEMU that has its pidfile in the runtime folder', async () => {
    t = makeTestHome();
    const vmDir = path.join(t.runtimeDir, '0123456789ab');
    fs.mkdirSync(vmDir, { mode: 0o700 });
    const pidfile = path.join(vmDir, 'qemu.pid');
    const q = launch('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-pidfile', pidfile], t.env);
    await until(() => fs.existsSync(pidfile) && fs.readFileSync(pidfile, 'utf8').trim() !== '', 'the QEMU pidfile');
    expect(pidfilePids(t.runtimeDir)).toEqual([q.pid]);
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([q.pid]);
    const rt = t.runtimeDir;
    await t.cleanup();
    expect(isAlive(q.pid!)).toBe(false);
    expect(qemuProcessesUnder(rt)).toEqual([]);
    expect(fs.existsSync(rt)).toBe(false);
  });

  it('kills processes that only carry its environment, and ones naming its folders', async () => {
    t = makeTestHome();
    const engine = launch(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], t.env);
    const mentions = launch(process.execPath, ['-e', 'setInterval(() => {}, 1000)', t.home]);
    await until(() => fs.existsSync(`/proc/${engine.pid}/environ`) && fs.existsSync(`/proc/${mentions.pid}`), 'the children');
    // Not QEMU, so not counted as one.
    expect(qemuProcessesUnder(t.home)).toEqual([]);
    await t.cleanup();
    expect(isAlive(engine.pid!)).toBe(false);
    expect(isAlive(mentions.pid!)).toBe(false);
  });

  it('leaves alone a process named by a stale pidfile that is not one of ours', async () => {
    t = makeTestHome();
    const stranger = launch(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    await until(() => fs.existsSync(`/proc/${stranger.pid}`), 'the stranger');
    fs.mkdirSync(path.join(t.runtimeDir, 'aaaaaaaaaaaa'));
    fs.writeFileSync(path.join(t.runtimeDir, 'aaaaaaaaaaaa', 'qemu.pid'), `${stranger.pid}\n`);
    await t.cleanup();
    expect(isAlive(stranger.pid!)).toBe(true);
  });
});
