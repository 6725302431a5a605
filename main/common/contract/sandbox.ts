/**
 * The `sandbox` service (issue 11): what a developer sandbox adds to a VM — its port forwards (live
 * while it runs, saved for the next start, the automatic SSH one included), its shared folders, how
 * to reach it over SSH, and what its guest agent says about it.
 *
 * `create --cloud-image` itself is the `vms.create` spec's `cloud` field (CloudCreateSpec below).
 */
import { z } from 'zod';
import { PortForward } from '../models/vm-config';
import { ShareTag, type SharedFolder } from '../models/sandbox';
import { AbsPath, VmRef, lazySchema, lazyTuples, type ServiceSchema } from './shared';

/** `create NAME --cloud-image …`: the image (already resolved to a local file by the front end:
 *  a catalog id or URL is downloaded and verified through the media service first) and cloud-init's
 *  settings. Every file is read by the engine and checked (never trusted). */
export const CloudCreateSpec = lazySchema(() =>
  z
    .object({
      /** The cloud image: a local qcow2 or raw file (never modified; the VM's disk is an overlay). */
      image: AbsPath,
      /** Guest user (default: the host user's name when Linux accepts it, else "vivarium"). */
      user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a user name is lower-case letters, digits, "_" or "-", starting with a letter or "_"').optional(),
      /** An SSH public key file (.pub); none: Vivarium makes an ed25519 pair for this VM. */
      sshKeyFile: AbsPath.optional(),
      /** A file whose first line is the password; none: password login is locked. */
      passwordFile: AbsPath.optional(),
      /** Guest host name (default: the VM name as a host name). */
      hostname: z.string().min(1).max(63).optional(),
      /** Packages cloud-init installs at first boot. */
      packages: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.+:~_-]{0,99}$/, 'not a package name')).max(100).optional(),
      /** A user-data file merged with Vivarium's. */
      userDataFile: AbsPath.optional(),
      /** Folders to share (9p), mounted at /mnt/<tag> in the guest. */
      shares: z.array(z.object({ hostPath: AbsPath, tag: ShareTag.optional(), readOnly: z.boolean().optional() }).strict()).max(16).optional(),
      /** Login shell (Alpine: /bin/sh). */
      shell: z.string().regex(/^\/[A-Za-z0-9/._-]{1,100}$/).optional(),
      /** Install qemu-guest-agent at first boot (needs the guest's package mirror; default true). */
      installGuestAgent: z.boolean().optional(),
    })
    .strict(),
);
export type CloudCreateSpec = z.infer<typeof CloudCreateSpec>;

/** One port forward as `forward list --json` prints it. Host side always 127.0.0.1. */
export interface ForwardInfo {
  readonly protocol: 'tcp' | 'udp';
  readonly hostAddress: string;
  readonly hostPort: number;
  readonly guestPort: number;
}

/** One shared folder as `share list --json` prints it; `guestPath` is where cloud-init guests mount it. */
export interface ShareInfo {
  readonly hostPath: string;
  readonly tag: string;
  readonly readOnly: boolean;
  readonly guestPath: string;
}

/** How to reach a sandbox over SSH right now. */
export interface SshAccess {
  readonly name: string;
  readonly running: boolean;
  readonly user: string;
  readonly host: '127.0.0.1';
  /** The host port forwarded to the guest's port 22 for this run; null while stopped. */
  readonly port: number | null;
  readonly identityFile: string | null;
  readonly knownHostsFile: string;
  /** The guest's serial log, where its host keys appear on first boot. */
  readonly serialLog: string;
  readonly pid: number | null;
  /** This engine can open the user's own terminal (sandbox.openTerminal): true in the desktop app. */
  readonly canOpenTerminal: boolean;
}

/** `sshCommand`'s options: the command to run in the guest, words joined with spaces into one shell command line as OpenSSH does (none: a login shell). */
export const SshCommandOptions = z.object({ command: z.array(z.string().max(4096)).max(255).optional() }).strict();
export type SshCommandOptions = z.infer<typeof SshCommandOptions>;

/** The system OpenSSH client's command for a running sandbox: spawn `file` with `args` (no shell),
 *  or paste `line` into a POSIX shell (each word quoted). */
export interface SshCommandLine {
  readonly file: string;
  readonly args: readonly string[];
  readonly line: string;
}

/** What `waitForSsh` saw: sshd's identification line, how many host keys were learned from the
 *  console on this wait (0: known_hosts had them), and how long it took (milliseconds). */
export interface SshReadyInfo {
  readonly banner: string;
  readonly learnedKeys: number;
  readonly readyAfterMs: number;
}

/** What the guest agent says (null in `show` when there is no agent answering). */
export interface GuestInfo {
  readonly hostname: string | null;
  /** Non-loopback addresses, IPv4 first. */
  readonly ips: readonly string[];
  /** The OS's pretty name ("Debian GNU/Linux 12 (bookworm)"), or null. */
  readonly os: string | null;
}

export const ShareRequest = z.object({ hostPath: AbsPath, tag: ShareTag.optional(), readOnly: z.boolean().optional() }).strict();
export type ShareRequest = z.infer<typeof ShareRequest>;

export interface SandboxService {
  /** Forwards in effect (running: live, the SSH one included) or saved (stopped). */
  forwards(ref: string): Promise<readonly ForwardInfo[]>;
  /** Adds a forward: live when running (QEMU hostfwd_add) and saved. @throws already-exists (a VM's
   *  forward or another program holds the port, named), invalid-argument */
  addForward(ref: string, forward: PortForward): Promise<readonly ForwardInfo[]>;
  /** Removes a forward live and from the config. @throws not-found */
  removeForward(ref: string, forward: PortForward): Promise<readonly ForwardInfo[]>;
  shares(ref: string): Promise<readonly ShareInfo[]>;
  /** Adds a shared folder (stopped VMs only). */
  addShare(ref: string, share: ShareRequest): Promise<readonly ShareInfo[]>;
  /** Removes a shared folder by host path or tag (stopped VMs only). */
  removeShare(ref: string, hostPathOrTag: string): Promise<readonly ShareInfo[]>;
  /** How to reach the VM over SSH. @throws invalid-state (not a cloud-init VM) */
  sshAccess(ref: string): Promise<SshAccess>;
  /** The guest agent's hostname, IPs and OS; null when the VM is stopped or no agent answers. */
  guest(ref: string): Promise<GuestInfo | null>;
  /**
   * The ssh command line for a running sandbox (its key, its own known_hosts, its forwarded port;
   * terminal/ssh-command.ts). @throws invalid-state (stopped, or not a cloud-init VM)
   */
  sshCommand(ref: string, options?: SshCommandOptions): Promise<SshCommandLine>;
  /**
   * Waits until the guest's SSH server takes sessions: host keys known (learned from the serial
   * console on first boot), then sshd's banner on the forwarded port. `timeoutMs` default 600 000.
   * @throws invalid-state (stopped, stopped while waiting, or no answer within the time)
   */
  waitForSsh(ref: string, timeoutMs?: number): Promise<SshReadyInfo>;
  /**
   * Opens the user's own terminal application running the VM's ssh command (desktop app only).
   * @returns the terminal's name. @throws unsupported (an engine without a desktop, as `vivarium serve`),
   *   invalid-state (stopped, or no terminal application could be started: the message names those tried)
   */
  openTerminal(ref: string): Promise<{ readonly terminal: string }>;
}

export const sandboxSchema: ServiceSchema<SandboxService> = {
  methods: lazyTuples({
    forwards: () => z.tuple([VmRef]),
    addForward: () => z.tuple([VmRef, PortForward]),
    removeForward: () => z.tuple([VmRef, PortForward]),
    shares: () => z.tuple([VmRef]),
    addShare: () => z.tuple([VmRef, ShareRequest]),
    removeShare: () => z.tuple([VmRef, z.string().min(1).max(4096)]),
    sshAccess: () => z.tuple([VmRef]),
    guest: () => z.tuple([VmRef]),
    sshCommand: () => z.tuple([VmRef, SshCommandOptions.optional()]),
    waitForSsh: () => z.tuple([VmRef, z.number().int().min(1000).max(24 * 3600_000).optional()]),
    openTerminal: () => z.tuple([VmRef]),
  }),
  events: [],
};

/** The share list entry shown to front ends. */
export function shareInfo(s: SharedFolder): ShareInfo {
  return { hostPath: s.hostPath, tag: s.tag, readOnly: s.readOnly, guestPath: `/mnt/${s.tag}` };
}
