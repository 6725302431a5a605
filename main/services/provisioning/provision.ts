/**
 * Everything `create --cloud-image` needs from provisioning, in one call: the SSH key (the user's
 * public key, or a pair made for this VM), the password hash, the user's extra user-data, and the
 * NoCloud seed image written into the bundle. What the VM config must remember comes back as
 * plain data; nothing secret is returned except paths.
 *
 * Files in the bundle (names in `CloudInitFiles`):
 *   cidata.iso            the seed (0600), attached read-only to the VM at every start
 *   ssh/id_ed25519(.pub)  the VM's own key pair, only when the user gave no public key (0600/0644)
 *   ssh/known_hosts       written later, from the guest's console (learnHostKeys)
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_GUEST_UID, SeedInputError, buildSeed, checkPublicKey, describeSeed, guestUidFor, type SeedInput, type SeedShare } from './cloud-init';
import { PasswordError, hashPassword } from './password-hash';
import { writeSeedIso } from './seed-iso';
import { createVmKeyPair } from './ssh-keys';

/** File names inside the bundle. */
export const CloudInitFiles = {
  seed: 'cidata.iso',
  sshDir: 'ssh',
  knownHosts: path.join('ssh', 'known_hosts'),
} as const;

/** What the user asked for (CLI flags / wizard fields), files not yet read. */
export interface CloudInitRequest {
  readonly bundleDir: string;
  /** The VM's id: cloud-init's instance-id. */
  readonly vmId: string;
  /** The VM's display name: the host name's default and the generated key's comment. */
  readonly vmName: string;
  readonly hostname?: string | null;
  /** Guest user; default the host user's name when it is a valid Linux name, else "vivarium". */
  readonly user?: string | null;
  /** A `.pub` file; none → Vivarium makes a key pair for this VM. */
  readonly sshPublicKeyFile?: string | null;
  /** A file holding the password (first line); none → password login locked. */
  readonly passwordFile?: string | null;
  /** A user-data file combined with Vivarium's (see cloud-init.ts). */
  readonly userDataFile?: string | null;
  readonly packages?: readonly string[];
  readonly shares?: readonly SeedShare[];
  /** The NIC's MAC from the VM config, for network-config. */
  readonly macAddress?: string | null;
  /** Login shell (Alpine images: /bin/sh). */
  readonly shell?: string;
  /** Default true (needs the guest to reach its package mirror). */
  readonly installGuestAgent?: boolean;
  /**
   * The host user's uid; default this process's (`process.getuid()`). The guest user gets it when
   * it is a normal uid (`guestUidFor`), else the guest's default 1000.
   */
  readonly hostUid?: number | null;
}

/** What was made; the VM config keeps these (all paths absolute). */
export interface CloudInitProvisioned {
  readonly seedFile: string;
  readonly user: string;
  readonly hostname: string;
  /** The private key `vivarium ssh` uses: the generated one, the private half next to the user's
   *  `.pub` when it exists, else null (ssh then uses the agent and default keys). */
  readonly identityFile: string | null;
  readonly publicKey: string;
  /** True when Vivarium made the key pair (it lives and dies with the bundle). */
  readonly generatedKey: boolean;
  readonly knownHostsFile: string;
  readonly passwordSet: boolean;
  /** The guest user's uid: the host user's (guestUidFor), or 1000 (the guest's first free uid). */
  readonly uid: number;
  /** One line safe to log (no key, hash or user-data text). */
  readonly summary: string;
}

const MAX_SMALL_FILE = 1024 * 1024;

/**
 * A valid host name from a VM name: lower case, runs of other characters → "-", at most 63
 * characters, "vivarium" when nothing is left ("My VM #2" → "my-vm-2").
 */
export function hostnameFromName(name: string): string {
  const h = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return h || 'vivarium';
}

/** The default guest user: the host user's name when Linux accepts it, else "vivarium". */
export function defaultGuestUser(hostUser: string = safeHostUser()): string {
  return /^[a-z_][a-z0-9_-]{0,31}$/.test(hostUser) && hostUser !== 'root' ? hostUser : 'vivarium';
}

function safeHostUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return '';
  }
}

async function readSmall(file: string, field: string, what: string): Promise<string> {
  if (!path.isAbsolute(file)) throw new SeedInputError(field, `The ${what} path must be absolute: ${file}`);
  let st;
  try {
    st = await fsp.stat(file);
  } catch (e) {
    throw new SeedInputError(field, `Cannot read the ${what} ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
  if (!st.isFile()) throw new SeedInputError(field, `The ${what} ${file} is not a file.`);
  if (st.size > MAX_SMALL_FILE) throw new SeedInputError(field, `The ${what} ${file} is larger than 1 MiB.`);
  return fsp.readFile(file, 'utf8');
}

/** The request's files read and checked (nothing written): what the seed needs besides the key. */
interface ReadRequest {
  readonly hostname: string;
  readonly user: string;
  /** The user's key line, or null when Vivarium is to make a key pair. */
  readonly publicKey: string | null;
  /** The private half next to the user's `.pub`, when it exists. */
  readonly userIdentity: string | null;
  readonly passwordHash: string | null;
  readonly extraUserData: string | null;
  readonly uid: number | null;
}

async function readRequest(req: Omit<CloudInitRequest, 'bundleDir'>): Promise<ReadRequest> {
  const hostname = req.hostname ?? hostnameFromName(req.vmName);
  const user = req.user ?? defaultGuestUser();
  let publicKey: string | null = null;
  let userIdentity: string | null = null;
  if (req.sshPublicKeyFile) {
    const text = (await readSmall(req.sshPublicKeyFile, 'sshPublicKeyFile', 'SSH public key file')).trim();
    publicKey = checkPublicKey(text.split(/\r?\n/).find((l) => l.trim() && !l.startsWith('#')) ?? '', 'sshPublicKeyFile');
    const priv = req.sshPublicKeyFile.replace(/\.pub$/, '');
    userIdentity = priv !== req.sshPublicKeyFile && (await fsp.stat(priv).then((s) => s.isFile(), () => false)) ? priv : null;
  }
  let passwordHash: string | null = null;
  if (req.passwordFile) {
    const text = await readSmall(req.passwordFile, 'passwordFile', 'password file');
    try {
      passwordHash = await hashPassword(text.split(/\r?\n/)[0] ?? '');
    } catch (e) {
      if (e instanceof PasswordError) throw new SeedInputError('passwordFile', e.message);
      throw e;
    }
  }
  const extraUserData = req.userDataFile ? await readSmall(req.userDataFile, 'userDataFile', 'user-data file') : null;
  const uid = guestUidFor(req.hostUid !== undefined ? req.hostUid : (process.getuid?.() ?? null));
  return { hostname, user, publicKey, userIdentity, passwordHash, extraUserData, uid };
}

function seedInputOf(req: Omit<CloudInitRequest, 'bundleDir'>, r: ReadRequest, publicKey: string): SeedInput {
  return {
    instanceId: req.vmId,
    hostname: r.hostname,
    user: { name: r.user, sshAuthorizedKeys: [publicKey], passwordHash: r.passwordHash, uid: r.uid, ...(req.shell ? { shell: req.shell } : {}) },
    packages: req.packages ?? [],
    installGuestAgent: req.installGuestAgent ?? true,
    shares: req.shares ?? [],
    network: req.macAddress ? { macAddress: req.macAddress } : null,
    extraUserData: r.extraUserData,
  };
}

/** A well-formed ed25519 public key line standing in for the key pair a dry run does not make. */
const STAND_IN_KEY = `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]).toString('base64')} stand-in`;

/**
 * Every check `provisionCloudInit` makes — the files read (key, password, user-data), the seed's
 * fields (host name, user, packages, shares, MAC, user-data's type and YAML) — without writing or
 * generating anything: what `create --dry-run` and the New VM wizard's Summary run, so they refuse
 * exactly what `create` would. `vmId` may be any valid instance id (a dry run has none yet).
 * @throws SeedInputError naming the field, as provisionCloudInit does.
 */
export async function checkCloudInitRequest(req: Omit<CloudInitRequest, 'bundleDir'>): Promise<void> {
  const r = await readRequest(req);
  buildSeed(seedInputOf(req, r, r.publicKey ?? STAND_IN_KEY));
}

/**
 * Makes the VM's key (if needed) and its seed image in `bundleDir`.
 * @throws SeedInputError (field: hostname, user.name, sshPublicKeyFile, passwordFile, userDataFile,
 *   packages, shares, network.macAddress…) with a sentence for the user; fs errors writing the bundle.
 */
export async function provisionCloudInit(req: CloudInitRequest): Promise<CloudInitProvisioned> {
  const r = await readRequest(req);
  const { hostname, user, passwordHash, uid } = r;
  let publicKey: string;
  let identityFile: string | null;
  let generatedKey = false;
  if (r.publicKey !== null) {
    publicKey = r.publicKey;
    identityFile = r.userIdentity;
  } else {
    // Checked first with a stand-in key, so a refused request leaves no key pair behind.
    buildSeed(seedInputOf(req, r, STAND_IN_KEY));
    const made = await createVmKeyPair(req.bundleDir, `vivarium@${hostname}`);
    publicKey = made.publicKey;
    identityFile = made.paths.privateKey;
    generatedKey = true;
  }
  const input = seedInputOf(req, r, publicKey);
  const seed = buildSeed(input);
  const seedFile = path.join(req.bundleDir, CloudInitFiles.seed);
  await writeSeedIso(seedFile, seed);
  return {
    seedFile,
    user,
    hostname,
    identityFile,
    publicKey,
    generatedKey,
    knownHostsFile: path.join(req.bundleDir, CloudInitFiles.knownHosts),
    passwordSet: passwordHash !== null,
    uid: uid ?? DEFAULT_GUEST_UID,
    summary: describeSeed(input, seed),
  };
}
