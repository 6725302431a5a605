import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseHostKeysFromConsole } from './known-hosts';
import {
  earlySharesScript,
  HOST_KEYS_SCRIPT,
  SHARES_SCRIPT,
  SHARES_SCRIPT_PATH,
  SeedInputError,
  USER_PART_MERGE_TYPE,
  buildSeed,
  checkPublicKey,
  cloudConfig,
  describeSeed,
  guestUidFor,
  sshdPasswordAuthScript,
  userFallbackScript,
  mimeMultipart,
  ninePMountCommand,
  parseCloudConfig,
  splitUserData,
  userDataPartType,
  type SeedInput,
} from './cloud-init';
import { hashPassword, verifyPassword, PasswordError } from './password-hash';
import { SHARE_MODES_FW_CFG } from '../qemu/shares-args';
import { seedIsoImage, writeSeedIso } from './seed-iso';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJIyD+RlzF23a8pDBQyUhfQLcBSmaT0KQYAFuXAlTT8B dev@laptop';
// A comment full of YAML syntax: must come back as the same string.
const ODD_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJIyD+RlzF23a8pDBQyUhfQLcBSmaT0KQYAFuXAlTT8B a: b # c - [x] {y} \'"';

const base: SeedInput = {
  instanceId: 'b7a0c1d2-0000-4000-8000-000000000001',
  hostname: 'sandbox-1',
  user: { name: 'dev', sshAuthorizedKeys: [KEY] },
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-seed-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('buildSeed: files round-trip as YAML', () => {
  it('meta-data carries the instance id and host name', () => {
    const seed = buildSeed(base);
    expect(parse(seed.metaData)).toEqual({ 'instance-id': base.instanceId, 'local-hostname': 'sandbox-1' });
  });

  it('user-data is a #cloud-config with the user, key, locked password and no SSH passwords', () => {
    const seed = buildSeed(base);
    expect(seed.userData.startsWith('#cloud-config\n')).toBe(true);
    const cfg = parseCloudConfig(seed.userData);
    expect(cfg).toEqual(cloudConfig(base));
    expect(cfg.hostname).toBe('sandbox-1');
    expect(cfg.ssh_pwauth).toBe(false);
    expect(cfg.disable_root).toBe(true);
    const users = cfg.users as Record<string, unknown>[];
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ name: 'dev', lock_passwd: true, ssh_authorized_keys: [KEY], sudo: 'ALL=(ALL) NOPASSWD:ALL' });
    expect(users[0]).not.toHaveProperty('passwd');
    // The guest agent is installed by default and started either way.
    expect(cfg.packages).toEqual(['qemu-guest-agent']);
    expect(cfg.package_update).toBe(true);
    expect(JSON.stringify(cfg.runcmd)).toContain('qemu-guest-agent');
    // Re-serialising what was parsed gives the same data (no YAML surprises like "no" → false).
    expect(parse(stringify(cfg))).toEqual(cfg);
  });

  it('makes the host keys once per instance before sshd starts and prints them where known-hosts.ts reads them', () => {
    const cfg = parseCloudConfig(buildSeed(base).userData);
    expect(cfg.bootcmd).toEqual([
      ['cloud-init-per', 'instance', 'vivarium-host-keys', 'sh', '-c', HOST_KEYS_SCRIPT],
      ['cloud-init-per', 'instance', 'vivarium-sshd-pwauth', 'sh', '-c', sshdPasswordAuthScript(false)],
      ['sh', '-c', earlySharesScript([])],
    ]);
    // The ssh module must keep them (it would otherwise delete them and make others, printed only at the end).
    expect(cfg.ssh_deletekeys).toBe(false);
    // …nor add types of its own (an unprinted RSA key, the slow one to make on a TCG guest).
    expect(cfg.ssh_genkeytypes).toEqual(['ed25519', 'ecdsa']);
    // The script, run for real against a private /etc/ssh: stale image keys are replaced, and the
    // console block holds exactly the new public keys.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-hostkeys-'));
    try {
      fs.mkdirSync(path.join(root, 'etc', 'ssh'), { recursive: true });
      fs.writeFileSync(path.join(root, 'etc', 'ssh', 'ssh_host_ed25519_key.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBakedIntoTheImageBakedIntoTheImageBakedInto root@image\n');
      fs.writeFileSync(path.join(root, 'etc', 'ssh', 'ssh_host_ed25519_key'), 'stale');
      const script = HOST_KEYS_SCRIPT.replaceAll('/etc/ssh', `${root}/etc/ssh`);
      const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
      const printed = parseHostKeysFromConsole(`[   36.1] cloud-init[411]: noise\n${out}`);
      const onDisk = fs.readdirSync(path.join(root, 'etc', 'ssh')).filter((f) => f.endsWith('.pub'))
        .map((f) => fs.readFileSync(path.join(root, 'etc', 'ssh', f), 'utf8').trim().split(/\s+/))
        .map(([type, key]) => ({ type, key }));
      expect(printed.map((k) => k.type).sort()).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519']);
      expect(printed.sort((a, b) => a.type.localeCompare(b.type))).toEqual(onDisk.sort((a, b) => a.type!.localeCompare(b.type!)));
      expect(out).not.toContain('BakedIntoTheImage');
      expect(fs.readFileSync(path.join(root, 'etc', 'ssh', 'ssh_host_ed25519_key'), 'utf8')).toContain('OPENSSH PRIVATE KEY');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('writes sshd\'s password setting where cloud-init looks for it before sshd starts, so cloud-init need not restart sshd', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-sshd-'));
    const run = (allow: boolean, conf: string) => execFileSync('sh', ['-c', sshdPasswordAuthScript(allow).replace('/etc/ssh/sshd_config', conf)]);
    try {
      // Debian 12's sshd_config includes sshd_config.d: cloud-init 22.3+ edits 50-cloud-init.conf there
      // (and restarts sshd when it had to add the line), older ones edit sshd_config itself.
      const conf = path.join(root, 'sshd_config');
      const dropIn = path.join(root, 'sshd_config.d', '50-cloud-init.conf');
      const body = `Include ${conf}.d/*.conf\n#PasswordAuthentication yes\n  passwordauthentication yes\nKbdInteractiveAuthentication no\n`;
      fs.writeFileSync(conf, body);
      for (const allow of [false, true]) {
        run(allow, conf);
        const line = `PasswordAuthentication ${allow ? 'yes' : 'no'}\n`;
        expect(fs.readFileSync(conf, 'utf8')).toBe(`${line}Include ${conf}.d/*.conf\n#PasswordAuthentication yes\nKbdInteractiveAuthentication no\n`);
        expect(fs.readFileSync(dropIn, 'utf8')).toBe(line);
        // Made as cloud-init's ensure_file makes it: root-only.
        expect(fs.statSync(dropIn).mode & 0o777).toBe(0o600);
      }
      // A drop-in that exists keeps its other lines and its mode.
      fs.writeFileSync(dropIn, 'PasswordAuthentication no\nPermitRootLogin no\n');
      fs.chmodSync(dropIn, 0o640);
      run(true, conf);
      expect(fs.readFileSync(dropIn, 'utf8')).toBe('PasswordAuthentication yes\nPermitRootLogin no\n');
      expect(fs.statSync(dropIn).mode & 0o777).toBe(0o640);
      expect(fs.readdirSync(path.join(root, 'sshd_config.d'))).toEqual(['50-cloud-init.conf']);
      // No Include (an older image): sshd_config alone, no drop-in made.
      const old = path.join(root, 'old');
      fs.mkdirSync(old);
      fs.writeFileSync(path.join(old, 'sshd_config'), 'PasswordAuthentication yes\n');
      run(false, path.join(old, 'sshd_config'));
      expect(fs.readFileSync(path.join(old, 'sshd_config'), 'utf8')).toBe('PasswordAuthentication no\n');
      expect(fs.readdirSync(old)).toEqual(['sshd_config']);
      // No sshd_config (an image without OpenSSH): nothing happens, no error.
      run(false, path.join(root, 'none'));
      expect(fs.readdirSync(root).sort()).toEqual(['old', 'sshd_config', 'sshd_config.d']);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
    const withPassword = parseCloudConfig(buildSeed({ ...base, user: { ...base.user, passwordHash: '$6$abc$def' } }).userData);
    expect((withPassword.bootcmd as string[][])[1]!.at(-1)).toBe(sshdPasswordAuthScript(true));
  });

  it('keeps strings full of YAML syntax intact', () => {
    const seed = buildSeed({ ...base, user: { name: 'dev', sshAuthorizedKeys: [ODD_KEY] }, packages: ['yes', 'no', 'on', '1.0', 'null'] });
    const cfg = parseCloudConfig(seed.userData);
    expect((cfg.users as { ssh_authorized_keys: string[] }[])[0]!.ssh_authorized_keys).toEqual([ODD_KEY]);
    expect(cfg.packages).toEqual(['yes', 'no', 'on', '1.0', 'null', 'qemu-guest-agent']);
  });

  it('a password hash unlocks the account and allows SSH passwords', async () => {
    const hash = await hashPassword('correct horse battery staple\n');
    expect(hash).toMatch(/^\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/);
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('wrong', hash)).toBe(false);
    const cfg = parseCloudConfig(buildSeed({ ...base, user: { ...base.user, passwordHash: hash } }).userData);
    expect((cfg.users as Record<string, unknown>[])[0]).toMatchObject({ lock_passwd: false, passwd: hash });
    expect(cfg.ssh_pwauth).toBe(true);
  });

  it('mounts shares over 9p at /mnt/<tag>, read-only ones ro', () => {
    const cfg = parseCloudConfig(
      buildSeed({ ...base, shares: [{ tag: 'src', readOnly: false }, { tag: 'docs', readOnly: true }], installGuestAgent: false }).userData,
    );
    expect(cfg.mounts).toEqual([
      ['src', '/mnt/src', '9p', 'trans=virtio,version=9p2000.L,msize=131072,cache=mmap,nofail', '0', '0'],
      ['docs', '/mnt/docs', '9p', 'trans=virtio,version=9p2000.L,msize=131072,cache=mmap,ro,nofail', '0', '0'],
    ]);
    expect(cfg).not.toHaveProperty('packages');
    // The same mounts, made in bootcmd (before sshd answers) on every boot: the last bootcmd entry.
    const early = (cfg.bootcmd as string[][]).at(-1)!;
    expect(early.slice(0, 2)).toEqual(['sh', '-c']);
    expect(early[2]).toBe(earlySharesScript([{ tag: 'src', readOnly: false }, { tag: 'docs', readOnly: true }]));
    expect(early[2]).toContain('mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=mmap,ro docs /mnt/docs');
    expect(early[2]).toContain('mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=mmap src /mnt/src');
    execFileSync('/bin/sh', ['-n', '-c', early[2]!]);
    // Without shares at creation, the entry still mounts shares added later (any 9p tag QEMU offers).
    expect((parseCloudConfig(buildSeed(base).userData).bootcmd as string[][]).at(-1)).toEqual(['sh', '-c', earlySharesScript([])]);
    expect(earlySharesScript([])).toContain('/sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag');
    // (Not run here: as root it would load a module and try mounts on the host. cloud-guest.test.ts runs it in a guest.)
    expect(ninePMountCommand({ tag: 'docs', readOnly: true })).toBe(
      'sudo mkdir -p /mnt/docs && sudo mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=mmap,ro docs /mnt/docs',
    );
  });

  it('installs a per-boot script that mounts shares added later, valid POSIX sh', () => {
    const cfg = parseCloudConfig(buildSeed(base).userData);
    expect(cfg.write_files).toEqual([{ path: SHARES_SCRIPT_PATH, permissions: '0755', owner: 'root:root', content: SHARES_SCRIPT }]);
    expect(SHARES_SCRIPT).toContain('opts=trans=virtio,version=9p2000.L,msize=131072,cache=mmap\n');
    expect(SHARES_SCRIPT).toContain('mount -t 9p -o "$opts" "$tag" "$mp"');
    // The mode comes from the fw_cfg file the argv builder adds (qemu/shares-args.ts).
    expect(SHARES_SCRIPT).toContain(`/sys/firmware/qemu_fw_cfg/by_name/${SHARE_MODES_FW_CFG}/raw`);
    execFileSync('/bin/sh', ['-n', '-c', SHARES_SCRIPT]);
    // On a machine without 9p devices it does nothing and succeeds.
    expect(execFileSync('/bin/sh', ['-c', SHARES_SCRIPT], { encoding: 'utf8' })).toBe('');
  });

  it('network-config (v2) matches the NIC by MAC; none without a MAC', () => {
    expect(buildSeed(base).networkConfig).toBeNull();
    const net = parse(buildSeed({ ...base, network: { macAddress: '52:54:00:12:34:56' } }).networkConfig!);
    expect(net).toEqual({
      version: 2,
      ethernets: { eth0: { match: { macaddress: '52:54:00:12:34:56' }, 'set-name': 'eth0', dhcp4: true } },
    });
  });
});

describe('extra user-data: MIME multi-part', () => {
  const extra = '#cloud-config\nruncmd:\n  - [touch, /run/extra-ran]\nhostname: not-this-one\n';

  it('puts Vivarium\'s #cloud-config first and the user\'s part second with the append merge type', () => {
    const seed = buildSeed({ ...base, extraUserData: extra });
    expect(seed.userData).toMatch(/^Content-Type: multipart\/mixed; boundary="==vivarium-[0-9a-f]{24}=="\nMIME-Version: 1\.0\n/);
    const parts = splitUserData(seed.userData);
    expect(parts.map((p) => p.type)).toEqual(['text/cloud-config', 'text/cloud-config']);
    expect(parseCloudConfig(parts[0]!.body)).toEqual(cloudConfig(base));
    expect(parts[1]!.body).toBe(extra);
    expect(parts[1]!.mergeType).toBe(USER_PART_MERGE_TYPE);
    expect(parts[0]!.mergeType).toBeUndefined();
  });

  it('passes scripts through with their MIME type', () => {
    const parts = splitUserData(buildSeed({ ...base, extraUserData: '#!/bin/sh\necho hi > /run/x\n' }).userData);
    expect(parts[1]).toMatchObject({ type: 'text/x-shellscript', body: '#!/bin/sh\necho hi > /run/x\n' });
    expect(parts[1]!.mergeType).toBeUndefined();
  });

  it('survives any bytes in the user\'s part (base64)', () => {
    const body = '#cloud-config\nwrite_files:\n  - path: /x\n    content: "--==vivarium-boundary==\\n é ✓"\n';
    const mime = mimeMultipart([{ type: 'text/cloud-config', filename: 'a', body }], '==fixed==');
    expect(splitUserData(mime)[0]!.body).toBe(body);
  });

  it('refuses what cloud-init would ignore or misread, saying how to fix it', () => {
    const bad = (extraUserData: string): SeedInputError => {
      try {
        buildSeed({ ...base, extraUserData });
      } catch (e) {
        expect(e).toBeInstanceOf(SeedInputError);
        expect((e as SeedInputError).field).toBe('extraUserData');
        return e as SeedInputError;
      }
      throw new Error('accepted');
    };
    expect(bad('packages: [git]\n').message).toMatch(/first line must be "#cloud-config"/);
    expect(bad('#cloud-config\nfoo: [unclosed\n').message).toMatch(/not valid YAML \(line \d+, column \d+\)/);
    expect(bad('#cloud-config\n- a\n- b\n').message).toMatch(/mapping/);
    expect(bad('Content-Type: multipart/mixed; boundary="x"\nMIME-Version: 1.0\n\n--x--\n').message).toMatch(/already MIME/);
    expect(userDataPartType('## template: jinja\n#cloud-config\n')).toBe('text/jinja2');
  });
});

describe('the guest user\'s uid follows the host user\'s (9p shares)', () => {
  it('keeps a normal uid (macOS 501, a second Linux user 1001); root, system uids and nobody get the default', () => {
    expect(guestUidFor(501)).toBe(501);
    expect(guestUidFor(1000)).toBe(1000);
    expect(guestUidFor(1001)).toBe(1001);
    expect(guestUidFor(0)).toBeNull();
    expect(guestUidFor(499)).toBeNull();
    expect(guestUidFor(65534)).toBeNull();
    expect(guestUidFor(null)).toBeNull();
  });

  it('asks cloud-init for that uid, with a bootcmd that makes the user anyway when the image uses it', () => {
    const cfg = parseCloudConfig(buildSeed({ ...base, user: { ...base.user, uid: 501 } }).userData);
    expect((cfg.users as Record<string, unknown>[])[0]).toMatchObject({ name: 'dev', uid: 501 });
    const bootcmd = cfg.bootcmd as string[][];
    expect(bootcmd).toHaveLength(4);
    expect(bootcmd[2]!.slice(0, 3)).toEqual(['cloud-init-per', 'instance', 'vivarium-user-uid']);
    expect(bootcmd[2]!.at(-1)).toBe(userFallbackScript('dev', 501, '/bin/bash'));
    // Valid POSIX sh, with and without a password hash to carry over.
    execFileSync('sh', ['-n', '-c', userFallbackScript('dev', 501, '/bin/bash', '$6$abc$def/.')]);
    expect(userFallbackScript('dev', 501, '/bin/sh', '$6$abc$def')).toContain("usermod -p '$6$abc$def' dev");
    // Without a uid: no uid key, and the guest's first free uid (1000) as before.
    const plain = parseCloudConfig(buildSeed(base).userData);
    expect((plain.users as Record<string, unknown>[])[0]).not.toHaveProperty('uid');
    expect(plain.bootcmd as unknown[]).toHaveLength(3);
  });

  it('refuses a uid that is not a person\'s', () => {
    expect(() => buildSeed({ ...base, user: { ...base.user, uid: 0 } })).toThrow(/not a uid for a person's account/);
  });
});

describe('input checks', () => {
  const field = (input: Partial<SeedInput>): string => {
    try {
      buildSeed({ ...base, ...input });
    } catch (e) {
      expect(e).toBeInstanceOf(SeedInputError);
      return (e as SeedInputError).field;
    }
    return 'accepted';
  };
  it('names the field that is wrong', () => {
    expect(field({ hostname: 'bad_host' })).toBe('hostname');
    expect(field({ hostname: '-x' })).toBe('hostname');
    expect(field({ hostname: `a${'b'.repeat(63)}` })).toBe('hostname');
    expect(field({ instanceId: '../x' })).toBe('instanceId');
    expect(field({ user: { name: 'Dev', sshAuthorizedKeys: [KEY] } })).toBe('user.name');
    expect(field({ user: { name: 'root', sshAuthorizedKeys: [KEY] } })).toBe('user.name');
    expect(field({ user: { name: 'dev', sshAuthorizedKeys: [] } })).toBe('user.sshAuthorizedKeys');
    expect(field({ user: { name: 'dev', sshAuthorizedKeys: ['ssh-ed25519 notbase64!'] } })).toBe('user.sshAuthorizedKeys');
    expect(field({ user: { name: 'dev', sshAuthorizedKeys: [KEY], passwordHash: 'hunter2' } })).toBe('user.passwordHash');
    expect(field({ packages: ['git; rm -rf /'] })).toBe('packages');
    expect(field({ shares: [{ tag: 'a b', readOnly: false }] })).toBe('shares');
    expect(field({ shares: [{ tag: 'a', readOnly: false }, { tag: 'a', readOnly: true }] })).toBe('shares');
    expect(field({ network: { macAddress: '52:54:00:12:34' } })).toBe('network.macAddress');
  });

  it('refuses a private key with a sentence that does not repeat it', () => {
    const priv = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----';
    expect(() => checkPublicKey(priv)).toThrow(/private SSH key.*public key/);
    try {
      checkPublicKey(priv);
    } catch (e) {
      expect((e as Error).message).not.toContain('b3BlbnNzaC1rZXktdjEAAAAABG5vbmU');
    }
  });

  it('refuses an empty password', async () => {
    await expect(hashPassword('\n')).rejects.toBeInstanceOf(PasswordError);
  });
});

describe('secrets stay out of logs', () => {
  it('describeSeed and error messages never carry the password, its hash, keys or user-data text', async () => {
    const clear = 'S3cret-Passw0rd!';
    const token = 'ghp_TOKENabcdef1234567890SECRET';
    const hash = await hashPassword(clear);
    const input: SeedInput = {
      ...base,
      user: { ...base.user, passwordHash: hash },
      extraUserData: `#cloud-config\nwrite_files:\n  - path: /etc/token\n    content: ${token}\n`,
    };
    const seed = buildSeed(input);
    const line = describeSeed(input, seed);
    expect(line).toMatch(/user dev, 1 SSH key\(s\), password set/);
    for (const secret of [clear, hash, hash.split('$')[3]!, token, 'AAAAC3NzaC1lZDI1NTE5']) expect(line).not.toContain(secret);

    // A broken user-data file: the YAML error is reported without echoing the line that holds the secret.
    try {
      buildSeed({ ...base, extraUserData: `#cloud-config\ntoken: [${token}\n` });
      throw new Error('accepted');
    } catch (e) {
      expect((e as Error).message).toMatch(/not valid YAML/);
      expect((e as Error).message).not.toContain(token);
    }

    // The clear password is nowhere in the seed, in memory or on disk; the hash is, in a 0600 file.
    const image = seedIsoImage(seed);
    expect(image.includes(Buffer.from(clear))).toBe(false);
    for (const text of [seed.metaData, seed.userData, seed.networkConfig ?? '']) expect(text).not.toContain(clear);
    const file = path.join(tmp, 'seed.iso');
    await writeSeedIso(file, seed);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file).includes(Buffer.from(clear))).toBe(false);
  });
});

describe('the seed image', () => {
  it('holds meta-data, user-data and network-config under their names, label cidata', async () => {
    const seed = buildSeed({ ...base, network: { macAddress: '52:54:00:ab:cd:ef' } });
    const file = path.join(tmp, 'seed2.iso');
    expect(await writeSeedIso(file, seed)).toBe(fs.statSync(file).size);
    const listing = execFileSync('isoinfo', ['-i', file, '-J', '-l'], { encoding: 'utf8' });
    for (const name of ['meta-data', 'user-data', 'network-config']) expect(listing).toMatch(new RegExp(`\\s${name}\\s*$`, 'm'));
    expect(execFileSync('isoinfo', ['-i', file, '-d'], { encoding: 'utf8' })).toMatch(/^Volume id: cidata$/m);
    const userData = execFileSync('isoinfo', ['-i', file, '-J', '-x', '/user-data'], { encoding: 'utf8' });
    expect(userData).toBe(seed.userData);
    // No leftover temp files next to it.
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
