import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SeedInputError, splitUserData } from './cloud-init';
import { verifyPassword } from './password-hash';
import { checkCloudInitRequest, defaultGuestUser, hostnameFromName, provisionCloudInit } from './provision';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-prov-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const bundle = (): string => {
  const d = path.join(tmp, `b${n++}`);
  fs.mkdirSync(d);
  return d;
};
const VM_ID = '0f3c2a9e-1b2c-4d3e-8f00-123456789abc';
const isoFile = (iso: string, name: string): string => execFileSync('isoinfo', ['-i', iso, '-J', '-x', `/${name}`], { encoding: 'utf8' });

describe('provisionCloudInit', () => {
  it('with no key given, makes one for the VM and writes the seed into the bundle', async () => {
    const dir = bundle();
    const r = await provisionCloudInit({ bundleDir: dir, vmId: VM_ID, vmName: 'My Sandbox #2', user: 'dev', macAddress: '52:54:00:00:00:01' });
    expect(r).toMatchObject({ hostname: 'my-sandbox-2', user: 'dev', generatedKey: true, passwordSet: false });
    expect(r.seedFile).toBe(path.join(dir, 'cidata.iso'));
    expect(r.identityFile).toBe(path.join(dir, 'ssh', 'id_ed25519'));
    expect(r.knownHostsFile).toBe(path.join(dir, 'ssh', 'known_hosts'));
    expect(fs.statSync(r.identityFile!).mode & 0o777).toBe(0o600);
    const userData = parse(isoFile(r.seedFile, 'user-data'));
    expect(userData.users[0].ssh_authorized_keys).toEqual([r.publicKey]);
    expect(parse(isoFile(r.seedFile, 'meta-data'))).toEqual({ 'instance-id': VM_ID, 'local-hostname': 'my-sandbox-2' });
    expect(parse(isoFile(r.seedFile, 'network-config')).ethernets.eth0.match.macaddress).toBe('52:54:00:00:00:01');
    expect(r.summary).not.toContain(r.publicKey.split(' ')[1]);
  });

  it('uses the user\'s public key and the private key beside it, hashes the password file and merges user-data', async () => {
    const dir = bundle();
    const keyDir = fs.mkdtempSync(path.join(tmp, 'keys-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@laptop', '-f', path.join(keyDir, 'id_ed25519')]);
    fs.writeFileSync(path.join(keyDir, 'pw'), 'hunter2 with spaces\n');
    fs.writeFileSync(path.join(keyDir, 'user-data'), '#!/bin/sh\ntouch /run/mine\n');
    const r = await provisionCloudInit({
      bundleDir: dir,
      vmId: VM_ID,
      vmName: 'x',
      hostname: 'box',
      user: 'dev',
      sshPublicKeyFile: path.join(keyDir, 'id_ed25519.pub'),
      passwordFile: path.join(keyDir, 'pw'),
      userDataFile: path.join(keyDir, 'user-data'),
    });
    expect(r.generatedKey).toBe(false);
    expect(r.identityFile).toBe(path.join(keyDir, 'id_ed25519'));
    expect(r.publicKey).toBe(fs.readFileSync(path.join(keyDir, 'id_ed25519.pub'), 'utf8').trim());
    expect(fs.existsSync(path.join(dir, 'ssh', 'id_ed25519'))).toBe(false);
    expect(r.passwordSet).toBe(true);
    const parts = splitUserData(isoFile(r.seedFile, 'user-data'));
    expect(parts.map((p) => p.type)).toEqual(['text/cloud-config', 'text/x-shellscript']);
    const hash = parse(parts[0]!.body).users[0].passwd as string;
    expect(await verifyPassword('hunter2 with spaces', hash)).toBe(true);
    expect(fs.readFileSync(r.seedFile).includes(Buffer.from('hunter2'))).toBe(false);
  });

  it('says which input is wrong, in words for the user', async () => {
    const fail = async (extra: Record<string, unknown>): Promise<SeedInputError> => {
      try {
        await provisionCloudInit({ bundleDir: bundle(), vmId: VM_ID, vmName: 'x', user: 'dev', ...extra });
      } catch (e) {
        expect(e).toBeInstanceOf(SeedInputError);
        return e as SeedInputError;
      }
      throw new Error('accepted');
    };
    const missing = await fail({ sshPublicKeyFile: path.join(tmp, 'nope.pub') });
    expect(missing.field).toBe('sshPublicKeyFile');
    expect(missing.message).toMatch(/Cannot read the SSH public key file .*ENOENT/);
    const privFile = path.join(tmp, 'priv');
    fs.writeFileSync(privFile, '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
    expect((await fail({ sshPublicKeyFile: privFile })).message).toMatch(/private SSH key/);
    const empty = path.join(tmp, 'empty-pw');
    fs.writeFileSync(empty, '\n');
    expect((await fail({ passwordFile: empty })).field).toBe('passwordFile');
    expect((await fail({ userDataFile: 'relative/user-data' })).message).toMatch(/must be absolute/);
    expect((await fail({ hostname: 'bad_name' })).field).toBe('hostname');
  });
});

describe('the guest user\'s uid', () => {
  it('is the host user\'s when it is a normal uid, else 1000 (Vivarium running as root)', async () => {
    const uidOf = async (hostUid: number): Promise<{ uid: number; seedUid: unknown }> => {
      const r = await provisionCloudInit({ bundleDir: bundle(), vmId: VM_ID, vmName: 'u', user: 'dev', hostUid });
      const cfg = parse(splitUserData(isoFile(r.seedFile, 'user-data'))[0]!.body) as { users: { uid?: number }[] };
      return { uid: r.uid, seedUid: cfg.users[0]!.uid };
    };
    expect(await uidOf(501)).toEqual({ uid: 501, seedUid: 501 });
    expect(await uidOf(1001)).toEqual({ uid: 1001, seedUid: 1001 });
    expect(await uidOf(0)).toEqual({ uid: 1000, seedUid: undefined });
  });
});

describe('checkCloudInitRequest (create --dry-run, the wizard\'s Summary)', () => {
  const refusal = async (extra: Record<string, unknown>): Promise<SeedInputError | 'accepted'> => {
    try {
      await checkCloudInitRequest({ vmId: 'dry-run', vmName: 'x', user: 'dev', ...extra });
      return 'accepted';
    } catch (e) {
      expect(e).toBeInstanceOf(SeedInputError);
      return e as SeedInputError;
    }
  };

  it('refuses what provisionCloudInit refuses, by field, and writes nothing', async () => {
    const dir = bundle();
    const bad = path.join(dir, 'bad.pub');
    fs.writeFileSync(bad, 'not a key\n');
    const priv = path.join(dir, 'id');
    fs.writeFileSync(priv, '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
    const ud = path.join(dir, 'user-data');
    fs.writeFileSync(ud, 'packages: [git]\n');
    const before = fs.readdirSync(dir).sort();
    expect(await refusal({ sshPublicKeyFile: bad })).toMatchObject({ field: 'sshPublicKeyFile', message: expect.stringMatching(/Not an OpenSSH public key/) });
    expect(await refusal({ sshPublicKeyFile: priv })).toMatchObject({ field: 'sshPublicKeyFile', message: expect.stringMatching(/private SSH key/) });
    expect(await refusal({ userDataFile: ud })).toMatchObject({ field: 'extraUserData', message: expect.stringMatching(/cloud-init would ignore/) });
    expect(await refusal({ hostname: 'bad_host' })).toMatchObject({ field: 'hostname' });
    expect(await refusal({ packages: ['a;b'] })).toMatchObject({ field: 'packages' });
    expect(fs.readdirSync(dir).sort()).toEqual(before);
    // Without a key file (Vivarium would make a pair), the rest is still checked; nothing is made.
    expect(await refusal({})).toBe('accepted');
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });
});

describe('defaults', () => {
  it('derives a host name from any VM name', () => {
    expect(hostnameFromName('Café Büro')).toBe('cafe-buro');
    expect(hostnameFromName('---')).toBe('vivarium');
    expect(hostnameFromName('x'.repeat(100))).toHaveLength(63);
  });
  it('takes the host user name when Linux accepts it', () => {
    expect(defaultGuestUser('alice')).toBe('alice');
    expect(defaultGuestUser('Alice Smith')).toBe('vivarium');
    expect(defaultGuestUser('root')).toBe('vivarium');
  });
});
