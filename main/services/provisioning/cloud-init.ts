/**
 * cloud-init NoCloud seed contents, built as pure data: meta-data, user-data and network-config.
 *
 * Sources: cloud-init docs — "NoCloud" datasource (files `meta-data`, `user-data`, `network-config`,
 * label `cidata`), "Cloud config examples" (users, ssh_authorized_keys, ssh_pwauth, packages, mounts,
 * runcmd), "Networking config Version 2", "User-data formats" (MIME multi-part) and "Merging
 * user-data sections" (the `Merge-Type` header). Shared-folder mounts follow qemu-notes §6 (9p,
 * `trans=virtio,version=9p2000.L`) and Lima's cloud-config (mounts by 9p tag, `nofail`).
 *
 * Extra user-data from the user is combined with Vivarium's by **MIME multi-part**, cloud-init's own
 * mechanism, not by merging YAML here: Vivarium's `#cloud-config` is the first part; the user's
 * file is the second part, sent as it is (any type cloud-init knows: `#cloud-config`, `#!` scripts,
 * `#cloud-boothook`, `#include`, `## template: jinja`…). A `#cloud-config` part from the user
 * carries `Merge-Type: dict(recurse_array,no_replace)+list(append)`, so cloud-init merges it this
 * way: lists are appended to Vivarium's (users, packages, runcmd, mounts, write_files… all keep
 * both sides' entries), mappings are merged key by key, and where both give a scalar value
 * (hostname, ssh_pwauth…) Vivarium's value stays — the fields Vivarium asks for win, everything
 * else the user adds. Without extra user-data, user-data is a plain `#cloud-config` document.
 *
 * Secrets: the password reaches this module only as a SHA-512 crypt hash (see password-hash.ts);
 * user-data may still hold secrets the user put in extra user-data, so callers must never log
 * these strings — log `describeSeed()` instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sshpk } from './sshpk-lazy';
import { parse, parseDocument, stringify } from 'yaml';
import { guestUidFor, ninePMountCommandOptions, ninePMountOptions } from '../../common/guest-uid';
import { SHARE_MODES_FW_CFG } from '../qemu/shares-args';

/** A 9p shared folder as the guest mounts it: `tag` is QEMU's `mount_tag`, mounted at `/mnt/<tag>`. */
export interface SeedShare {
  readonly tag: string;
  readonly readOnly: boolean;
}

/** Everything the seed is made from. Strings are checked by `buildSeed`; nothing is trusted. */
export interface SeedInput {
  /** meta-data `instance-id`: cloud-init re-runs its per-instance steps when it changes. Use the VM's id. */
  readonly instanceId: string;
  /** Host name (RFC 1123: 1–63 letters, digits, hyphens; not starting or ending with a hyphen). */
  readonly hostname: string;
  /** The account cloud-init creates (with passwordless sudo). The distro's default user is not created. */
  readonly user: {
    readonly name: string;
    /** OpenSSH public key lines (`ssh-ed25519 AAAA… comment`); at least one. */
    readonly sshAuthorizedKeys: readonly string[];
    /** A crypt(3) hash (`$6$…`, from `hashPassword`), or null: then password login is locked and SSH refuses passwords. */
    readonly passwordHash?: string | null;
    /** Login shell, default `/bin/bash`; Alpine images have only `/bin/sh` (busybox ash). */
    readonly shell?: string;
    /**
     * The user's uid in the guest (`guestUidFor(host uid)`), or null/absent: the guest's first free
     * uid (1000 on a fresh image). See `guestUidFor` for why it follows the host user's.
     */
    readonly uid?: number | null;
  };
  /** Packages the guest installs on first boot (needs the guest to reach its mirror). */
  readonly packages?: readonly string[];
  /** Install qemu-guest-agent on first boot (default true). It is started either way when present. */
  readonly installGuestAgent?: boolean;
  /** 9p shares to mount at /mnt/<tag> on every boot. */
  readonly shares?: readonly SeedShare[];
  /**
   * The NIC to configure by DHCP, matched by MAC (`52:54:00:xx:xx:xx`). null/absent → no
   * network-config file: cloud-init then uses DHCP on the first NIC (its fallback).
   */
  readonly network?: { readonly macAddress: string } | null;
  /** The user's own user-data file contents, combined as described above. */
  readonly extraUserData?: string | null;
}

/** The seed's files, as text. `networkConfig` is null when the seed has none. */
export interface Seed {
  readonly metaData: string;
  readonly userData: string;
  readonly networkConfig: string | null;
}

/** A field of `SeedInput` that is not acceptable, with the sentence to show. */
export class SeedInputError extends Error {
  override name = 'SeedInputError';
  constructor(
    /** Dotted path of the offending field in SeedInput, e.g. "user.name". */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where a share appears in a cloud-init guest. */
export function shareMountPoint(tag: string): string {
  return `/mnt/${tag}`;
}

// The guest user's uid (the host user's, as Lima does) and the 9p mount command live in common/.
export { DEFAULT_GUEST_UID, guestUidFor, ninePMountCommand, ninePMountOptions } from '../../common/guest-uid';

/** The Merge-Type given to a #cloud-config part from the user (see the module comment). */
export const USER_PART_MERGE_TYPE = 'dict(recurse_array,no_replace)+list(append)';

const HOSTNAME_RE = /^(?=.{1,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
// useradd's default NAME_REGEX (Debian adduser.conf), 32 characters at most.
const USERNAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const RESERVED_USERS = new Set(['root', 'daemon', 'bin', 'sys', 'sync', 'nobody', 'sshd']);
// 9p mount tags: QEMU accepts longer ones, but keep them to what every guest kernel and a path take.
const TAG_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$/;
// Package names with an optional version pin (apt "name=ver", dnf/apk "name-ver" are plain names).
const PACKAGE_RE = /^[A-Za-z0-9][A-Za-z0-9+._@:-]{0,127}(=[A-Za-z0-9+._~:-]{1,128})?$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const INSTANCE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CRYPT_RE = /^\$(6|5|y|2[aby])\$[./A-Za-z0-9$=,]+$/;
const MAX_EXTRA_USER_DATA = 1024 * 1024;

/**
 * Checks one OpenSSH public key line and returns it normalised (`type base64 [comment]`).
 * @throws SeedInputError for a private key, several keys on one line, or anything sshpk cannot parse.
 */
export function checkPublicKey(line: string, field = 'user.sshAuthorizedKeys'): string {
  const text = line.trim();
  if (/PRIVATE KEY/.test(text)) {
    throw new SeedInputError(field, 'That is a private SSH key. Give the public key (the .pub file) instead; the private key must stay on this computer.');
  }
  if (text.includes('\n')) throw new SeedInputError(field, 'Give one SSH public key per line.');
  try {
    sshpk().parseKey(text, 'ssh');
  } catch (e) {
    throw new SeedInputError(field, `Not an OpenSSH public key (${(e as Error).message}). Give a line like "ssh-ed25519 AAAA… you@host", as in a .pub file.`);
  }
  return text;
}

function check(cond: boolean, field: string, message: string): void {
  if (!cond) throw new SeedInputError(field, message);
}

/** The first line of a user-data document decides its type (cloud-init "User-data formats"). */
const PART_TYPES: readonly (readonly [RegExp, string])[] = [
  [/^#cloud-config\s*$/, 'text/cloud-config'],
  [/^#!/, 'text/x-shellscript'],
  [/^#cloud-boothook\s*$/, 'text/cloud-boothook'],
  [/^#include(-once)?\s*$/, 'text/x-include-url'],
  [/^#part-handler\s*$/, 'text/part-handler'],
  [/^#cloud-config-archive\s*$/, 'text/cloud-config-archive'],
  [/^## template:\s*jinja\s*$/, 'text/jinja2'],
];

/** The MIME type cloud-init gives a user-data document, or null when it would not recognise it. */
export function userDataPartType(text: string): string | null {
  const first = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  return PART_TYPES.find(([re]) => re.test(first))?.[1] ?? null;
}

function checkExtraUserData(text: string): string {
  check(Buffer.byteLength(text) <= MAX_EXTRA_USER_DATA, 'extraUserData', 'The user-data file is larger than 1 MiB; cloud-init seeds are meant for small configuration.');
  if (/^(MIME-Version|Content-Type):/im.test(text.split(/\r?\n\r?\n/, 1)[0] ?? '')) {
    throw new SeedInputError('extraUserData', 'The user-data file is already MIME multi-part. Give its parts as one #cloud-config or script file.');
  }
  const type = userDataPartType(text);
  if (!type) {
    throw new SeedInputError(
      'extraUserData',
      'cloud-init would ignore this user-data file: its first line must be "#cloud-config", "#!" (a script), ' +
        '"#cloud-boothook", "#include" or "## template: jinja".',
    );
  }
  if (type === 'text/cloud-config') {
    const doc = parseDocument(text);
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const where = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
      throw new SeedInputError('extraUserData', `The user-data file is not valid YAML${where}: ${e.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS();
    check(value === null || (typeof value === 'object' && !Array.isArray(value)), 'extraUserData', 'A #cloud-config file must hold a mapping (key: value lines) at the top.');
  }
  return type;
}

/** The #cloud-config document Vivarium asks for, as a plain object (exported for tests and the UI's preview). */
export function cloudConfig(input: SeedInput): Record<string, unknown> {
  const u = input.user;
  const hash = u.passwordHash ?? null;
  const packages = [...(input.packages ?? [])];
  if (input.installGuestAgent !== false && !packages.includes('qemu-guest-agent')) packages.push('qemu-guest-agent');
  const shares = input.shares ?? [];
  const config: Record<string, unknown> = {
    hostname: input.hostname,
    manage_etc_hosts: true,
    users: [
      {
        name: u.name,
        gecos: u.name,
        groups: ['sudo'],
        shell: u.shell ?? '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: hash === null,
        ...(hash === null ? {} : { passwd: hash }),
        ssh_authorized_keys: u.sshAuthorizedKeys.map((k) => k.trim()),
        // The host user's uid (guestUidFor): a 9p share's files the host user owns are this user's.
        // useradd then gives the user's own group the same gid when it is free.
        ...(u.uid != null ? { uid: u.uid } : {}),
      },
    ],
    disable_root: true,
    // Password login over SSH only when a password was set.
    ssh_pwauth: hash !== null,
  };
  if (packages.length > 0) {
    config.package_update = true;
    config.packages = packages;
  }
  if (shares.length > 0) {
    config.mounts = shares.map((s) => [s.tag, shareMountPoint(s.tag), '9p', ninePMountOptions(s.readOnly), '0', '0']);
  }
  // The host keys on the console as soon as they exist. cloud-init's keys_to_console prints them only
  // at the end of its final stage, 10-20 s after sshd is up on a TCG guest, and until then nobody
  // may connect (the key would be trusted blindly). So they are made here, once per instance, in
  // bootcmd (the init stage, before sshd starts) and printed in keys_to_console's own block
  // (known-hosts.ts reads the last block; keys_to_console later prints the same keys). The ssh
  // module then keeps them (ssh_deletekeys off; it only generates missing ones). A clone's new
  // instance-id makes new keys the same way.
  config.bootcmd = [
    ['cloud-init-per', 'instance', 'vivarium-host-keys', 'sh', '-c', HOST_KEYS_SCRIPT],
    // sshd's password setting written before sshd starts: cloud-init's set_passwords module (config
    // stage, after sshd is up and answering) otherwise writes it for ssh_pwauth and restarts sshd,
    // resetting the connections `vivarium ssh` has just opened. With the value already where it
    // looks (sshdPasswordAuthScript) it finds nothing to change and does not restart it.
    ['cloud-init-per', 'instance', 'vivarium-sshd-pwauth', 'sh', '-c', sshdPasswordAuthScript(hash !== null)],
  ];
  // bootcmd runs before cloud-init's users-groups module: if the image already has an account with
  // the wanted uid, useradd --uid would fail and the user would not exist at all; so the user is
  // made here without a fixed uid, and users-groups then finds it and only adds keys and sudo.
  if (u.uid != null) config.bootcmd = [...(config.bootcmd as unknown[]), ['cloud-init-per', 'instance', 'vivarium-user-uid', 'sh', '-c', userFallbackScript(u.name, u.uid, u.shell ?? '/bin/bash', hash)]];
  // The shares mounted before sshd answers: cloud-init's mounts module and the per-boot script run
  // in later stages, after `vivarium ssh` may already have connected and found /mnt/<tag> empty.
  // bootcmd runs on every boot, so shares added later are mounted early too; the later two then
  // find the mounts in place.
  config.bootcmd = [...(config.bootcmd as unknown[]), ['sh', '-c', earlySharesScript(shares)]];
  config.ssh_deletekeys = false;
  // …and makes no other types either (its default list would add the slow RSA key, unprinted).
  config.ssh_genkeytypes = [...HOST_KEY_TYPES];
  // Debian's unit is started by udev when the agent's port appears; starting it here also covers
  // an image where it was just installed. Failure (no agent) must not fail the boot.
  config.runcmd = [['sh', '-c', 'systemctl start qemu-guest-agent.service 2>/dev/null || true']];
  // Shares added after the first boot: cloud-init's mounts run once per instance, so a per-boot
  // script mounts whatever 9p tag QEMU offers and is not mounted yet.
  config.write_files = [{ path: SHARES_SCRIPT_PATH, permissions: '0755', owner: 'root:root', content: SHARES_SCRIPT }];
  return config;
}

/**
 * The host key types a sandbox gets (cloud-init's `ssh_genkeytypes` names). No RSA: a 3072-bit RSA
 * key took most of the ~10 s bootcmd ran for `ssh-keygen -A` on a TCG guest (cloud-init analyze,
 * Debian 12 cloud guest, 2 vCPUs), while every OpenSSH since 6.5 (2014) and PuTTY since 0.68 (2017)
 * takes ed25519 or ECDSA.
 */
export const HOST_KEY_TYPES = ['ed25519', 'ecdsa'] as const;

/** bootcmd's host key script: replaces whatever keys the image carries with new ones (HOST_KEY_TYPES) and prints their public halves. */
export const HOST_KEYS_SCRIPT =
  'rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && ' +
  `for t in ${HOST_KEY_TYPES.join(' ')}; do ssh-keygen -q -t "$t" -N "" -f "/etc/ssh/ssh_host_\${t}_key" </dev/null >/dev/null || exit 1; done && ` +
  '{ echo "-----BEGIN SSH HOST KEY KEYS-----"; cat /etc/ssh/ssh_host_*_key.pub; echo "-----END SSH HOST KEY KEYS-----"; }';

/**
 * bootcmd's script writing sshd's `PasswordAuthentication yes|no` where cloud-init's set_passwords
 * module looks for it, so that module (config stage, when sshd already answers) finds its value in
 * place and does not restart sshd — a restart resets the connections `vivarium ssh` has just
 * opened ("kex_exchange_identification: read: Connection reset by peer").
 *
 * Two places, because cloud-init changed where it writes (cloudinit/ssh_util.py, update_ssh_config):
 * - up to 22.2 it edits /etc/ssh/sshd_config itself. The line goes first there (sshd takes the
 *   first value it reads, before any Include), replacing other lines of that keyword;
 * - from 22.3 (Debian 12 ships 22.4.2), when sshd_config has `Include /etc/ssh/sshd_config.d/*.conf`,
 *   it edits `sshd_config.d/50-cloud-init.conf` (made 0600 when missing) and restarts sshd whenever
 *   it had to add the line. The same line goes there, the file made as cloud-init makes it.
 * Nothing when sshd_config is absent (an image without OpenSSH).
 */
export function sshdPasswordAuthScript(allow: boolean): string {
  const v = allow ? 'yes' : 'no';
  return (
    'f=/etc/ssh/sshd_config; [ -f "$f" ] || exit 0; ' +
    // put FILE: the line first, other lines of the keyword dropped, the file's mode kept.
    `put() { { echo "PasswordAuthentication ${v}"; grep -vi '^[[:space:]]*PasswordAuthentication[[:space:]]' "$1" || true; } > "$1.vivarium" && ` +
    'cat "$1.vivarium" > "$1" && rm -f "$1.vivarium"; }; ' +
    'put "$f" && ' +
    'if grep -q "^Include $f.d/[*].conf" "$f"; then ' +
    'd="$f.d/50-cloud-init.conf"; mkdir -p "$f.d" && { [ -f "$d" ] || { touch "$d" && chmod 600 "$d"; }; } && put "$d"; fi'
  );
}

/**
 * bootcmd's fallback for a uid the image already uses: create the user with the next free uid (and
 * set the password hash, which cloud-init's users-groups applies only to users it creates itself).
 * Every value is checked by `validate` (name, shell path, crypt hash: no quote, space or `;`).
 */
export function userFallbackScript(name: string, uid: number, shell: string, passwordHash: string | null = null): string {
  return (
    `if ! getent passwd ${name} >/dev/null && getent passwd ${uid} >/dev/null; then ` +
    `echo "vivarium: uid ${uid} is taken in this image; ${name} gets the next free uid" >&2; ` +
    `useradd -m -s ${shell} ${name} || adduser -D -s ${shell} ${name}; ` +
    (passwordHash ? `usermod -p '${passwordHash}' ${name}; ` : '') +
    'fi'
  );
}

/**
 * bootcmd's script (every boot, before sshd starts): the seed's shares at /mnt/<tag> with their own
 * options (a read-only share mounted `ro`), then any other 9p tag QEMU offers (a share added while
 * the VM was stopped) as SHARES_SCRIPT does; each unless something is mounted there already. A
 * share that fails to mount is reported on stderr and does not stop the boot. Tags are checked by
 * `validate` (TAG_RE).
 */
export function earlySharesScript(shares: readonly { readonly tag: string; readonly readOnly: boolean }[]): string {
  const one = (s: { readonly tag: string; readonly readOnly: boolean }): string => {
    const mp = shareMountPoint(s.tag);
    return `grep -qs " ${mp} " /proc/mounts || { mkdir -p ${mp} && mount -t 9p -o ${ninePMountCommandOptions(s.readOnly)} ${s.tag} ${mp}; } || echo "vivarium: could not mount share ${s.tag}" >&2`;
  };
  return `modprobe 9pnet_virtio 2>/dev/null\n${shares.map((x) => `${one(x)}\n`).join('')}${SHARES_LOOP}exit 0\n`;
}

/** Where the per-boot share script goes (cloud-init runs /var/lib/cloud/scripts/per-boot/* on every boot). */
export const SHARES_SCRIPT_PATH = '/var/lib/cloud/scripts/per-boot/vivarium-9p-shares.sh';

/** Where Linux shows the share modes QEMU passes in fw_cfg (the qemu_fw_cfg module's sysfs). */
const SHARE_MODES_PATH = `/sys/firmware/qemu_fw_cfg/by_name/${SHARE_MODES_FW_CFG}/raw`;

/**
 * The loop of SHARES_SCRIPT: every 9p tag QEMU offers, mounted at /mnt/<tag> unless something else is
 * there, `ro` or `rw` as the host says in fw_cfg (SHARE_MODES_FW_CFG in qemu/shares-args.ts: a 9p
 * device has no mode of its own). A share already mounted with the other mode (its read-only setting
 * changed since the first boot, when cloud-init wrote /etc/fstab) is remounted with the host's. The
 * qemu_fw_cfg module is loaded only once a 9p device exists, so the script does nothing elsewhere;
 * without fw_cfg in the guest a share is mounted `rw` and QEMU still refuses writes to a read-only one.
 */
const SHARES_LOOP = `modes=
for f in /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag; do
  [ -r "$f" ] || continue
  if [ -z "$modes" ]; then
    modprobe qemu_fw_cfg 2>/dev/null
    modes=" $(cat ${SHARE_MODES_PATH} 2>/dev/null) "
  fi
  tag=$(tr -d '\\000' < "$f")
  case "$tag" in ''|*[!A-Za-z0-9_.-]*) continue ;; esac
  mp="/mnt/$tag"
  case "$modes" in *" $tag:ro "*) mode=ro ;; *" $tag:rw "*) mode=rw ;; *) mode= ;; esac
  if grep -qs " $mp 9p " /proc/mounts; then
    now=$(awk -v m="$mp" '$2 == m && $3 == "9p" { split($4, o, ","); print o[1] }' /proc/mounts | tail -n 1)
    [ -z "$mode" ] || [ "$now" = "$mode" ] || mount -o "remount,$mode" "$mp" || echo "vivarium: could not remount share $tag $mode" >&2
    continue
  fi
  grep -qs " $mp " /proc/mounts && continue
  mkdir -p "$mp"
  opts=${ninePMountCommandOptions(false)}
  [ "$mode" = ro ] && opts="$opts,ro"
  mount -t 9p -o "$opts" "$tag" "$mp" || echo "vivarium: could not mount share $tag" >&2
done
`;

/**
 * Mounts every 9p share the VM has at /mnt/<tag> unless something is mounted there already. The
 * tags come from sysfs (9pnet_virtio's `mount_tag` attribute of each virtio device). POSIX sh, so
 * busybox ash (Alpine) runs it too. A read-only share stays read-only: QEMU refuses its writes.
 */
export const SHARES_SCRIPT = `#!/bin/sh
# Vivarium: mount the VM's 9p shared folders at /mnt/<tag> (shares added after the first boot too).
${SHARES_LOOP}exit 0
`;

function validate(input: SeedInput): void {
  check(INSTANCE_ID_RE.test(input.instanceId), 'instanceId', 'The instance id must be 1–128 letters, digits, ".", "_" or "-".');
  check(
    HOSTNAME_RE.test(input.hostname),
    'hostname',
    `"${input.hostname}" is not a valid host name: use 1–63 letters, digits and hyphens, not starting or ending with a hyphen.`,
  );
  const u = input.user;
  check(
    USERNAME_RE.test(u.name),
    'user.name',
    `"${u.name}" is not a valid Linux user name: start with a lower-case letter or "_", then up to 31 lower-case letters, digits, "_" or "-".`,
  );
  check(!RESERVED_USERS.has(u.name), 'user.name', `"${u.name}" is a system account; choose another user name.`);
  if (u.uid != null) check(guestUidFor(u.uid) === u.uid, 'user.uid', `${u.uid} is not a uid for a person's account (500–59999).`);
  if (u.shell !== undefined) check(/^\/[A-Za-z0-9_./-]{1,63}$/.test(u.shell) && !u.shell.includes('..'), 'user.shell', `"${u.shell}" is not a shell path such as /bin/bash.`);
  check(u.sshAuthorizedKeys.length > 0, 'user.sshAuthorizedKeys', 'Give at least one SSH public key (or let Vivarium make a key pair).');
  u.sshAuthorizedKeys.forEach((k) => checkPublicKey(k));
  if (u.passwordHash != null) {
    check(CRYPT_RE.test(u.passwordHash), 'user.passwordHash', 'The password must be given as a crypt(3) hash ($6$…); hash it with hashPassword().');
  }
  for (const p of input.packages ?? []) {
    check(PACKAGE_RE.test(p), 'packages', `"${p}" is not a package name (letters, digits, + . _ - and an optional =version).`);
  }
  const tags = new Set<string>();
  for (const s of input.shares ?? []) {
    check(TAG_RE.test(s.tag), 'shares', `"${s.tag}" is not a usable share tag: 1–31 letters, digits, ".", "_" or "-", starting with a letter or digit.`);
    check(!tags.has(s.tag), 'shares', `Two shared folders use the tag "${s.tag}"; give each its own.`);
    tags.add(s.tag);
  }
  if (input.network) {
    check(MAC_RE.test(input.network.macAddress), 'network.macAddress', `"${input.network.macAddress}" is not a MAC address (six lower-case hex pairs, colon-separated).`);
  }
}

/**
 * Builds the seed's files.
 * @throws SeedInputError naming the field (see SeedInput for the rules).
 */
export function buildSeed(input: SeedInput): Seed {
  validate(input);
  const metaData = stringify({ 'instance-id': input.instanceId, 'local-hostname': input.hostname });
  const config = `#cloud-config\n${stringify(cloudConfig(input), { lineWidth: 0 })}`;
  let userData = config;
  if (input.extraUserData != null && input.extraUserData.trim() !== '') {
    const type = checkExtraUserData(input.extraUserData);
    userData = mimeMultipart([
      { type: 'text/cloud-config', filename: 'vivarium.cfg', body: config },
      {
        type,
        filename: 'user-data-extra',
        body: input.extraUserData,
        ...(type === 'text/cloud-config' ? { mergeType: USER_PART_MERGE_TYPE } : {}),
      },
    ]);
  }
  const networkConfig = input.network
    ? stringify({
        version: 2,
        ethernets: {
          eth0: { match: { macaddress: input.network.macAddress }, 'set-name': 'eth0', dhcp4: true },
        },
      })
    : null;
  return { metaData, userData, networkConfig };
}

/** A part of a MIME multi-part user-data. */
export interface UserDataPart {
  readonly type: string;
  readonly filename: string;
  readonly body: string;
  readonly mergeType?: string;
}

/**
 * A MIME multi-part/mixed message as cloud-init reads it (Python's email parser): bodies base64
 * encoded, so any byte survives and no body can contain the boundary.
 */
export function mimeMultipart(parts: readonly UserDataPart[], boundary = `==vivarium-${randomBytes(12).toString('hex')}==`): string {
  const lines = [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    'MIME-Version: 1.0',
    '',
  ];
  for (const p of parts) {
    lines.push(`--${boundary}`);
    lines.push(`Content-Type: ${p.type}; charset="utf-8"`);
    lines.push('MIME-Version: 1.0');
    lines.push('Content-Transfer-Encoding: base64');
    if (p.mergeType) lines.push(`Merge-Type: ${p.mergeType}`);
    lines.push(`Content-Disposition: attachment; filename="${p.filename}"`);
    lines.push('');
    lines.push(...(Buffer.from(p.body, 'utf8').toString('base64').match(/.{1,76}/g) ?? ['']));
  }
  lines.push(`--${boundary}--`, '');
  return lines.join('\n');
}

/**
 * Reads back what `mimeMultipart` wrote (for tests and `describeSeed`); a non-MIME user-data is one
 * part. Not a general MIME parser.
 */
export function splitUserData(userData: string): UserDataPart[] {
  const m = /^Content-Type: multipart\/mixed; boundary="([^"]+)"/.exec(userData);
  if (!m) return [{ type: userDataPartType(userData) ?? 'text/plain', filename: 'user-data', body: userData }];
  const boundary = m[1]!;
  const chunks = userData.split(`--${boundary}`).slice(1, -1);
  return chunks.map((chunk) => {
    const [head = '', ...rest] = chunk.replace(/^\n/, '').split('\n\n');
    const header = (name: string): string | undefined => new RegExp(`^${name}: ([^\\n;]+)`, 'mi').exec(head)?.[1]?.trim();
    const body = Buffer.from(rest.join('\n\n').replace(/\s+/g, ''), 'base64').toString('utf8');
    const mergeType = header('Merge-Type');
    return {
      type: header('Content-Type') ?? 'text/plain',
      filename: /filename="([^"]+)"/.exec(head)?.[1] ?? '',
      body,
      ...(mergeType ? { mergeType } : {}),
    };
  });
}

/**
 * A one-line summary of a seed that is safe to log: sizes and hashes of the files, the user name and
 * hostname, counts — never keys, password hashes or user-data text.
 */
export function describeSeed(input: SeedInput, seed: Seed): string {
  const h = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);
  const parts = splitUserData(seed.userData).map((p) => p.type.replace(/^text\//, '')).join('+');
  return (
    `cloud-init seed for ${input.hostname} (instance ${input.instanceId}): user ${input.user.name}, ` +
    `${input.user.sshAuthorizedKeys.length} SSH key(s), password ${input.user.passwordHash ? 'set' : 'locked'}, ` +
    `${(input.packages ?? []).length} package(s), ${(input.shares ?? []).length} share(s); ` +
    `user-data ${Buffer.byteLength(seed.userData)} B [${parts}] sha256:${h(seed.userData)}, ` +
    `meta-data ${Buffer.byteLength(seed.metaData)} B, network-config ${seed.networkConfig ? `${Buffer.byteLength(seed.networkConfig)} B` : 'none'}`
  );
}

/** Parses a #cloud-config document (or throws): helper for tests and previews. */
export function parseCloudConfig(text: string): Record<string, unknown> {
  if (!text.startsWith('#cloud-config\n')) throw new Error('not a #cloud-config document');
  return parse(text) as Record<string, unknown>;
}
