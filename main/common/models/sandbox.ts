/**
 * What a "developer sandbox" VM (issue 11: `create --cloud-image`) keeps in its config beyond a plain
 * VM: how to reach it over SSH (the user, the key, the per-VM known_hosts, the cloud-init seed) and
 * its shared folders. Both are additive, optional fields of VmConfig (`cloudInit`, `shares`): a
 * config without them is a plain VM, so the config version did not change.
 */
import { z } from 'zod';
import type { PortForward } from './vm-config';

/** A host path in a config: absolute, no NUL. */
const AbsHostPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute path');

/** 9p mount tags (QEMU `mount_tag`): short, no separators; the guest mounts it at /mnt/<tag>. */
export const ShareTag = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$/, 'a share tag is 1-31 letters, digits, ".", "_" or "-", starting with a letter or digit');

/** A host folder shared with the guest over 9p (virtio-9p, `-virtfs local,…,security_model=none`). */
export const SharedFolder = z
  .object({
    hostPath: AbsHostPath,
    tag: ShareTag,
    readOnly: z.boolean().default(false),
  })
  .strict();
export type SharedFolder = z.infer<typeof SharedFolder>;

/** The most shared folders a VM may have. */
export const MAX_SHARES = 16;

/** Shared folders: tags and host folders unique. */
export const SharedFolderList = z
  .array(SharedFolder)
  .max(MAX_SHARES)
  .refine((l) => new Set(l.map((s) => s.tag)).size === l.length, 'two shared folders use the same tag');

/** How Vivarium reaches a cloud-init guest over SSH (`vivarium ssh`, the Terminal tab). */
export const CloudInitAccess = z
  .object({
    /** The guest user cloud-init created. */
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/),
    /** The guest's host name. */
    hostname: z.string().min(1).max(63),
    /** The private key ssh uses (absolute); null: ssh's own defaults and agent. */
    identityFile: AbsHostPath.nullable(),
    /** Vivarium's known_hosts for this VM (absolute), learnt from the guest's serial console. */
    knownHostsFile: AbsHostPath,
    /** The NoCloud seed file in the bundle (also listed as a read-only raw disk). */
    seed: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
    /** Whether a password was set (else password login is locked). */
    passwordSet: z.boolean().default(false),
  })
  .strict();
export type CloudInitAccess = z.infer<typeof CloudInitAccess>;

/** Where a shared folder appears in a cloud-init guest. */
export function guestMountPath(tag: string): string {
  return `/mnt/${tag}`;
}

/** A default tag from a host folder's name ("/home/me/My Project" → "my-project"), unique among `taken`. */
export function defaultShareTag(hostPath: string, taken: readonly string[]): string {
  const base =
    (hostPath.replace(/\/+$/, '').split('/').pop() ?? '')
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .slice(0, 24) || 'share';
  let tag = base;
  for (let i = 2; taken.includes(tag); i++) tag = `${base}-${i}`;
  return tag;
}

/** "tcp:2222:22" (the CLI's spelling). */
export function forwardText(f: PortForward): string {
  return `${f.protocol}:${f.hostPort}:${f.guestPort}`;
}

/**
 * Parses `[tcp|udp:]HOSTPORT:GUESTPORT` (tcp when the protocol is left out).
 * @returns the forward, or null when the text is not one (ports 1–65535).
 */
export function parseForward(text: string): PortForward | null {
  const m = /^(?:(tcp|udp):)?(\d{1,5}):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const hostPort = Number(m[2]);
  const guestPort = Number(m[3]);
  if (hostPort < 1 || hostPort > 65535 || guestPort < 1 || guestPort > 65535) return null;
  return { protocol: (m[1] ?? 'tcp') as 'tcp' | 'udp', hostPort, guestPort };
}

