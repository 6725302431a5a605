import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HOST_KEYS_BEGIN, HOST_KEYS_END } from './known-hosts';
import { SshNotReadyError, rewriteKnownHostsPort, sshBanner, waitForSshReady } from './ssh-ready';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-sshready-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A real TCP server on 127.0.0.1: what each connection gets is up to `onConn`. */
async function serve(onConn: (s: net.Socket) => void): Promise<number> {
  const srv = net.createServer(onConn);
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as net.AddressInfo).port;
}
const sshd = (s: net.Socket): void => {
  s.write('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n');
  s.on('error', () => undefined);
};
const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIB/jHinQDfIouET4ICvLtSUkvH8Gc87Ff6/hlSYumOnC';
const KEYS_BLOCK = `${HOST_KEYS_BEGIN}\nssh-ed25519 ${ED} root@box\n${HOST_KEYS_END}\n`;

describe('sshBanner', () => {
  it('reads the identification line, after other lines too', async () => {
    expect(await sshBanner(await serve(sshd))).toBe('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3');
    const chatty = await serve((s) => s.end('welcome\r\nSSH-2.0-x\r\n'));
    expect(await sshBanner(chatty)).toBe('SSH-2.0-x');
  });

  it('is null for what slirp does before sshd runs (accept, then close), for silence and for no listener', async () => {
    expect(await sshBanner(await serve((s) => s.end()))).toBeNull();
    expect(await sshBanner(await serve(() => undefined), 300)).toBeNull();
    const closed = await serve(sshd);
    await new Promise((r) => servers.pop()!.close(r));
    expect(await sshBanner(closed, 500)).toBeNull();
  });
});

describe('rewriteKnownHostsPort', () => {
  it('points the loopback entries at the new port and keeps other lines', async () => {
    const kh = path.join(tmp, 'kh1');
    fs.writeFileSync(kh, `[127.0.0.1]:40001 ssh-ed25519 ${ED}\nexample.org ssh-ed25519 ${ED}\n`);
    expect(await rewriteKnownHostsPort(kh, 40002)).toBe(1);
    expect(fs.readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:40002 ssh-ed25519 ${ED}\nexample.org ssh-ed25519 ${ED}\n`);
    await expect(rewriteKnownHostsPort(path.join(tmp, 'none'), 1)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('waitForSshReady', () => {
  it('first boot: learns the keys from the console once printed, then waits for the banner', async () => {
    const log = path.join(tmp, 'serial-a.log');
    const kh = path.join(tmp, 'a', 'known_hosts');
    fs.writeFileSync(log, 'booting\n');
    let up = false;
    const port = await serve((s) => (up ? sshd(s) : s.end()));
    setTimeout(() => fs.appendFileSync(log, KEYS_BLOCK), 150);
    setTimeout(() => {
      up = true;
    }, 400);
    const r = await waitForSshReady({ serialLog: log, knownHostsFile: kh, port, timeoutMs: 10_000, pollMs: 50 });
    expect(r.learnedKeys).toEqual([{ type: 'ssh-ed25519', key: ED }]);
    expect(r.banner).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(r.keysAfterMs).toBeLessThanOrEqual(r.readyAfterMs);
    expect(fs.readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:${port} ssh-ed25519 ${ED}\n`);
  });

  it('later boots: keeps the known keys (the console has none) and moves them to the new port', async () => {
    const kh = path.join(tmp, 'kh-b');
    fs.writeFileSync(kh, `[127.0.0.1]:1234 ssh-ed25519 ${ED}\n`);
    const log = path.join(tmp, 'serial-b.log');
    fs.writeFileSync(log, 'second boot, nothing about keys\n');
    const port = await serve(sshd);
    const r = await waitForSshReady({ serialLog: log, knownHostsFile: kh, port, timeoutMs: 5000, pollMs: 50 });
    expect(r.learnedKeys).toBeNull();
    expect(fs.readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:${port} ssh-ed25519 ${ED}\n`);
  });

  it('ends with the reason: timeout (saying what is missing), VM stopped, aborted', async () => {
    const log = path.join(tmp, 'serial-c.log');
    fs.writeFileSync(log, 'nothing\n');
    const port = await serve((s) => s.end());
    const opts = { serialLog: log, knownHostsFile: path.join(tmp, 'c', 'known_hosts'), port, pollMs: 20 };
    await expect(waitForSshReady({ ...opts, timeoutMs: 200 })).rejects.toThrow(/within 0 s \(no SSH host keys on the console yet\)/);
    await expect(waitForSshReady({ ...opts, timeoutMs: 5000, alive: () => false })).rejects.toMatchObject({ reason: 'stopped' });
    const ac = new AbortController();
    ac.abort();
    const e = await waitForSshReady({ ...opts, timeoutMs: 5000, signal: ac.signal }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SshNotReadyError);
    expect((e as SshNotReadyError).reason).toBe('aborted');
    fs.appendFileSync(log, KEYS_BLOCK);
    await expect(waitForSshReady({ ...opts, timeoutMs: 300 })).rejects.toThrow(/sshd does not answer yet/);
  });
});
