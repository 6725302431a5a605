/**
 * Children tied to their parent (real processes): a SIGINT kills them; in a CLI the process then
 * dies of the signal, in a process that handles SIGINT itself (`vivarium serve`) its handler still
 * runs to the end; a SIGKILL of the parent takes the child along (setpriv --pdeathsig).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../test-support/qemu-procs';

const MODULE = path.join(__dirname, '..', '..', '..', 'out', 'main', 'services', 'qemu', 'tied-child.js');

/** Runs a parent that starts `sleep 60` tied to it, prints the child's pid, then waits. */
function parent(graceful: boolean): { proc: ReturnType<typeof spawn>; childPid: Promise<number>; out: () => string } {
  const script = `
    const { spawnTied } = require(${JSON.stringify(MODULE)});
    ${graceful ? "process.once('SIGINT', () => setTimeout(() => { console.log('graceful'); process.exit(0); }, 300));" : ''}
    const c = spawnTied('sleep', ['60']);
    c.stdin.end();
    console.log('child ' + c.pid);
    setInterval(() => {}, 1000);`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  const childPid = new Promise<number>((resolve) => {
    proc.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = /child (\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
  });
  return { proc, childPid, out: () => text };
}

const exited = (p: ReturnType<typeof spawn>) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

describe('spawnTied', () => {
  it('SIGINT of a CLI: the child is killed and the CLI dies of SIGINT', async () => {
    const p = parent(false);
    const child = await p.childPid;
    expect(isAlive(child)).toBe(true);
    p.proc.kill('SIGINT');
    await exited(p.proc);
    expect(p.proc.signalCode).toBe('SIGINT');
    await expect.poll(() => isAlive(child), { timeout: 2000 }).toBe(false);
  });

  it('SIGINT of a process with its own handler: the child is killed, the handler runs to the end', async () => {
    const p = parent(true);
    const child = await p.childPid;
    p.proc.kill('SIGINT');
    await exited(p.proc);
    expect(p.proc.exitCode).toBe(0);
    expect(p.out()).toContain('graceful');
    await expect.poll(() => isAlive(child), { timeout: 2000 }).toBe(false);
  });

  it('SIGKILL of the parent takes the child along', async () => {
    const p = parent(false);
    const child = await p.childPid;
    p.proc.kill('SIGKILL');
    await exited(p.proc);
    await expect.poll(() => isAlive(child), { timeout: 2000 }).toBe(false);
  });
});
