import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HOST_KEYS_BEGIN, HOST_KEYS_END, knownHostsPattern, knownHostsText, learnHostKeys, parseHostKeysFromConsole } from './known-hosts';
import { createVmKeyPair, generateSshKeyPair } from './ssh-keys';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-keys-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the VM key pair', () => {
  it('is an ed25519 pair OpenSSH reads: ssh-keygen derives the same public key and fingerprint', async () => {
    const pair = await generateSshKeyPair('vivarium@my vm');
    expect(pair.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----\n$/);
    expect(pair.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+=* vivarium@my_vm$/);
    const file = path.join(tmp, 'k1');
    fs.writeFileSync(file, pair.privateKey, { mode: 0o600 });
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
    expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKey.split(' ').slice(0, 2));
    const fp = execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' });
    expect(fp).toContain(pair.fingerprint);
    expect(fp).toMatch(/\(ED25519\)/);
  });

  it('is written into the bundle 0600 (folder 0700) and never overwritten', async () => {
    const bundle = path.join(tmp, 'bundle');
    fs.mkdirSync(bundle);
    const made = await createVmKeyPair(bundle, 'vivarium@vm');
    expect(fs.statSync(made.paths.privateKey).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(made.paths.privateKey)).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(made.paths.publicKey, 'utf8')).toBe(`${made.publicKey}\n`);
    await expect(createVmKeyPair(bundle, 'vivarium@vm')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(made.paths.privateKey, 'utf8')).toBe(made.privateKey);
  });
});

// What a Debian 12 guest printed (cloud-init 22.4), with console noise around and inside the block.
const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIB/jHinQDfIouET4ICvLtSUkvH8Gc87Ff6/hlSYumOnC';
const ED2 = 'AAAAC3NzaC1lZDI1NTE5AAAAIJIyD+RlzF23a8pDBQyUhfQLcBSmaT0KQYAFuXAlTT8B';
const ECDSA =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFn7Qh1sHYz8jbY8PZNpCSDuBnyEkVpx2zC7s8nX26tHjQpHkLPcqTA0ZtJ+lCo=';
const consoleLog = (keys: string) =>
  `[   72.6] cloud-init[490]: Cloud-init v. 22.4.2 running 'modules:final'\r\n` +
  `<14>Nov 30 11:29:50 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n` +
  `<14>Nov 30 11:29:50 cloud-init: 256 SHA256:cu0usEsVz5JBYPQeZN6M6g4h1MdLZLHtwKKEl0UteZA root@box (ED25519)\r\n` +
  `<14>Nov 30 11:29:52 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----\r\n` +
  `${HOST_KEYS_BEGIN}\r\n${keys}${HOST_KEYS_END}\r\n` +
  `[   77.3] cloud-init[490]: Cloud-init v. 22.4.2 finished\r\n`;

describe('host keys from the serial console', () => {
  it('reads the keys between the markers, skipping console noise and bad lines', () => {
    const text = consoleLog(
      `ecdsa-sha2-nistp256 ${ECDSA} root@box\r\n[   75.1] random: crng init done\r\nssh-ed25519 ${ED} root@box\r\nssh-ed25519 AAAAnotakey root@box\r\n`,
    );
    expect(parseHostKeysFromConsole(text)).toEqual([
      { type: 'ecdsa-sha2-nistp256', key: ECDSA },
      { type: 'ssh-ed25519', key: ED },
    ]);
  });

  it('takes the last complete block (a new instance prints new keys) and nothing from an unfinished one', () => {
    const text = consoleLog(`ssh-ed25519 ${ED} root@box\n`) + consoleLog(`ssh-ed25519 ${ED2} root@box\n`) + `${HOST_KEYS_BEGIN}\nssh-ed25519 ${ED} x\n`;
    expect(parseHostKeysFromConsole(text)).toEqual([{ type: 'ssh-ed25519', key: ED2 }]);
    expect(parseHostKeysFromConsole(`${HOST_KEYS_BEGIN}\nssh-ed25519 ${ED} root@box\n`)).toEqual([]);
    expect(parseHostKeysFromConsole('booting…')).toEqual([]);
  });

  it('writes known_hosts for the forwarded port, which ssh-keygen -F finds', async () => {
    const log = path.join(tmp, 'serial.log');
    const kh = path.join(tmp, 'ssh', 'known_hosts');
    fs.writeFileSync(log, 'no keys yet\n');
    expect(await learnHostKeys(log, kh, 2222)).toEqual([]);
    expect(fs.existsSync(kh)).toBe(false);
    fs.appendFileSync(log, consoleLog(`ssh-ed25519 ${ED} root@box\n`));
    expect(await learnHostKeys(log, kh, 2222)).toHaveLength(1);
    expect(fs.readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${ED}\n`);
    const found = execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', kh], { encoding: 'utf8' });
    expect(found).toContain(ED);
    await expect(learnHostKeys(path.join(tmp, 'missing.log'), kh, 2222)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the known_hosts host pattern OpenSSH uses', () => {
    expect(knownHostsPattern(22)).toBe('127.0.0.1');
    expect(knownHostsPattern(60022)).toBe('[127.0.0.1]:60022');
    expect(() => knownHostsPattern(0)).toThrow(RangeError);
    expect(knownHostsText([{ type: 'ssh-ed25519', key: ED }], 5555)).toBe(`[127.0.0.1]:5555 ssh-ed25519 ${ED}\n`);
  });
});
