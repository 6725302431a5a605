/**
 * The `sandbox` service (contract/sandbox.ts): port forwards live and saved, shared folders, SSH
 * access and guest-agent facts of a VM. It sits beside the VM service and uses only its public
 * face: `get`/`list` for state and config, `qmpFor` for the engine's one QMP connection, the bundle
 * store to save a config, the jobs runner so a forward change never races a start or a stop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ForwardInfo, GuestInfo, SandboxService, ShareInfo, ShareRequest, SshAccess, SshCommandLine, SshCommandOptions, SshReadyInfo } from '../../common/contract';
import { shareInfo } from '../../common/contract/sandbox';
import { ErrorCode, VivariumError, errors } from '../../common/errors';
import { defaultShareTag, MAX_SHARES } from '../../common/models/sandbox';
import type { PortForward, VmConfig } from '../../common/models/vm-config';
import type { VmDetails } from '../../common/models/vm-state';
import { writeFileAtomicAsync, type Layout } from '../paths';
import { QemuIds } from '../qemu/argv';
import { QemuMonitor } from '../qemu/monitor';
import type { LocalVmService } from '../vm-service';
import { forwardConflict, forwardText, type OtherVmForwards } from './forward-rules';
import { SshNotReadyError, waitForSshReady } from '../provisioning/ssh-ready';
import { buildSshCommand, shellQuote, sshCommandLine, type SshCommand } from '../terminal/ssh-command';
import { queryGuestInfo } from './guest-info';
import { LIVE_FORWARDS_FILE, freeLoopbackPort, liveForwardsOf, portInUse, sshForwardOf } from './ssh-forward';


/** Opens the user's terminal running `cmd` (terminal/system-terminal.ts); given only by hosts with a desktop. */
export type TerminalOpener = (cmd: SshCommand, vm: { readonly name: string; readonly runtimeDir: string }) => Promise<{ readonly terminal: string }>;

export interface SandboxDeps {
  readonly vms: LocalVmService;
  readonly layout: Layout;
  /** The desktop app's way to open a terminal; absent: openTerminal is unsupported. */
  readonly openTerminal?: TerminalOpener;
}

/** How long `waitForSsh` waits by default (a first boot under TCG runs cloud-init for minutes). */
const SSH_WAIT_DEFAULT_MS = 600_000;

const running = (vm: VmDetails) => vm.state === 'running' || vm.state === 'paused';

export class LocalSandboxService implements SandboxService {
  constructor(private readonly deps: SandboxDeps) {}

  async forwards(ref: string): Promise<readonly ForwardInfo[]> {
    return (await this.forwardsOf(await this.deps.vms.get(ref))).map(info);
  }

  async addForward(ref: string, f: PortForward): Promise<readonly ForwardInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    if (config.network.mode !== 'user') {
      throw errors.invalid(`"${vm.name}" has no network, so nothing can be forwarded to it. Turn its networking on (user) first.`, { field: 'forwards' });
    }
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      const own = await this.forwardsOf(vm);
      const why = forwardConflict(f, own, await this.others(vm.id));
      if (why) throw new VivariumError(ErrorCode.AlreadyExists, why, { field: 'forwards' });
      if (await portInUse(f.hostPort, f.protocol)) {
        throw new VivariumError(ErrorCode.AlreadyExists, `${f.protocol} port ${f.hostPort} on 127.0.0.1 is in use by another program. Pick another host port.`, { field: 'forwards' });
      }
      if (running(vm)) {
        await this.monitor(vm).then((m) => m.hostfwdAdd(QemuIds.netdev, `${f.protocol}:127.0.0.1:${f.hostPort}-:${f.guestPort}`)).catch((e: unknown) => {
          throw errors.qemu(`QEMU could not forward ${forwardText(f)}: ${(e as Error).message}`);
        });
        await this.writeLive(vm.id, [...own, f]);
      }
      await this.save({ ...config, network: { ...config.network, forwards: [...config.network.forwards, f] } });
      return (await this.forwardsOf(await this.deps.vms.get(vm.id))).map(info);
    });
  }

  async removeForward(ref: string, f: PortForward): Promise<readonly ForwardInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      const same = (g: PortForward) => g.protocol === f.protocol && g.hostPort === f.hostPort && g.guestPort === f.guestPort;
      const own = await this.forwardsOf(vm);
      const saved = config.network.forwards.some(same);
      if (!own.some(same) && !saved) {
        throw new VivariumError(ErrorCode.NotFound, `"${vm.name}" has no forward ${forwardText(f)}. List them with forward list.`, { field: 'forwards' });
      }
      // The SSH forward: `vivarium ssh` and the Terminal tab reach the guest through it. While the VM
      // runs, removing the last one would cut them off until the next start, so it is refused.
      if (running(vm) && config.cloudInit && f.protocol === 'tcp' && f.guestPort === 22 && own.some(same) && !own.some((g) => !same(g) && g.protocol === 'tcp' && g.guestPort === 22)) {
        throw errors.state(
          `${forwardText(f)} is how vivarium ssh and the Terminal tab reach "${vm.name}"'s SSH server, so it stays while the VM runs. ` +
            `To move SSH to another host port, add that forward first (vivarium forward add ${shellQuote(vm.name)} tcp:PORT:22), then remove this one.`,
          undefined,
          { field: 'forwards' },
        );
      }
      if (running(vm) && own.some(same)) {
        await this.monitor(vm).then((m) => m.hostfwdRemove(QemuIds.netdev, `${f.protocol}:127.0.0.1:${f.hostPort}`)).catch((e: unknown) => {
          throw errors.qemu(`QEMU could not remove the forward ${forwardText(f)}: ${(e as Error).message}`);
        });
        await this.writeLive(vm.id, own.filter((g) => !same(g)));
      }
      if (saved) await this.save({ ...config, network: { ...config.network, forwards: config.network.forwards.filter((g) => !same(g)) } });
      return (await this.forwardsOf(await this.deps.vms.get(vm.id))).map(info);
    });
  }

  async shares(ref: string): Promise<readonly ShareInfo[]> {
    return requireConfig(await this.deps.vms.get(ref)).shares.map(shareInfo);
  }

  async addShare(ref: string, req: ShareRequest): Promise<readonly ShareInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      this.assertStopped(vm, 'change its shared folders');
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(req.hostPath);
      } catch {
        throw errors.invalid(`The folder ${req.hostPath} does not exist. Create it or give another folder.`, { field: 'shares' });
      }
      if (!st.isDirectory()) throw errors.invalid(`${req.hostPath} is not a folder; only folders can be shared.`, { field: 'shares' });
      const hostPath = path.resolve(req.hostPath);
      if (config.shares.some((s) => s.hostPath === hostPath)) throw new VivariumError(ErrorCode.AlreadyExists, `${hostPath} is already shared with "${vm.name}".`, { field: 'shares' });
      if (config.shares.length >= MAX_SHARES) throw errors.invalid(`A VM can share at most ${MAX_SHARES} folders. Remove one first.`, { field: 'shares' });
      const tag = req.tag ?? defaultShareTag(hostPath, config.shares.map((s) => s.tag));
      if (config.shares.some((s) => s.tag === tag)) throw new VivariumError(ErrorCode.AlreadyExists, `"${vm.name}" already has a shared folder tagged "${tag}". Give another --tag.`, { field: 'shares' });
      const next = { ...config, shares: [...config.shares, { hostPath, tag, readOnly: req.readOnly === true }] };
      await this.save(next);
      return next.shares.map(shareInfo);
    });
  }

  async removeShare(ref: string, hostPathOrTag: string): Promise<readonly ShareInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      this.assertStopped(vm, 'change its shared folders');
      const abs = path.isAbsolute(hostPathOrTag) ? path.resolve(hostPathOrTag) : null;
      const keep = config.shares.filter((s) => s.tag !== hostPathOrTag && s.hostPath !== abs);
      if (keep.length === config.shares.length) {
        throw new VivariumError(ErrorCode.NotFound, `"${vm.name}" shares no folder ${hostPathOrTag}. List them with share list.`, { field: 'shares' });
      }
      await this.save({ ...config, shares: keep });
      return keep.map(shareInfo);
    });
  }

  async sshAccess(ref: string): Promise<SshAccess> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    const ci = config.cloudInit;
    if (!ci) {
      throw errors.state(`"${vm.name}" was not created from a cloud image, so Vivarium has no SSH key or user for it. Create a sandbox with create NAME --cloud-image IMAGE.`);
    }
    const live = running(vm) ? await this.forwardsOf(vm) : config.network.forwards;
    const ssh = running(vm) ? sshForwardOf(live) : null;
    return {
      name: vm.name,
      running: running(vm),
      user: ci.user,
      host: '127.0.0.1',
      port: ssh?.hostPort ?? null,
      identityFile: ci.identityFile,
      knownHostsFile: ci.knownHostsFile,
      serialLog: this.deps.layout.bundle(vm.id).serialLog,
      pid: vm.pid,
      canOpenTerminal: this.deps.openTerminal !== undefined,
    };
  }

  async sshCommand(ref: string, options: SshCommandOptions = {}): Promise<SshCommandLine> {
    const cmd = await this.command(ref, options.command ?? []);
    return { file: cmd.file, args: cmd.args, line: sshCommandLine(cmd) };
  }

  async waitForSsh(ref: string, timeoutMs = SSH_WAIT_DEFAULT_MS): Promise<SshReadyInfo> {
    const access = await this.runningAccess(ref);
    try {
      const ready = await waitForSshReady({
        serialLog: access.serialLog,
        knownHostsFile: access.knownHostsFile,
        port: access.port,
        timeoutMs,
        alive: () => access.pid === null || isAlive(access.pid),
      });
      return { banner: ready.banner, learnedKeys: ready.learnedKeys?.length ?? 0, readyAfterMs: ready.readyAfterMs };
    } catch (e) {
      if (e instanceof SshNotReadyError) throw errors.state(`${access.name}: ${e.message}`);
      throw e;
    }
  }

  async openTerminal(ref: string): Promise<{ readonly terminal: string }> {
    const open = this.deps.openTerminal;
    if (!open) {
      throw new VivariumError(ErrorCode.Unsupported, 'Only the desktop app opens a terminal window. Copy the ssh command and paste it into your terminal.');
    }
    const vm = await this.deps.vms.get(ref);
    const cmd = await this.command(vm.id, []);
    try {
      return await open(cmd, { name: vm.name, runtimeDir: this.deps.layout.runtime(vm.id).dir });
    } catch (e) {
      throw errors.state(`${(e as Error).message} Copy the ssh command and paste it into your terminal.`);
    }
  }

  async guest(ref: string): Promise<GuestInfo | null> {
    const vm = await this.deps.vms.get(ref);
    if (vm.state !== 'running') return null;
    return queryGuestInfo(this.deps.layout.runtime(vm.id).qga);
  }

  // ---- internals -------------------------------------------------------------------------------

  /** sshAccess of a running sandbox (with its port). @throws invalid-state when it is not running. */
  /**
   * sshAccess of a running sandbox (with its port).
   * @throws invalid-state when it is not running, is paused (the guest cannot answer), or has no
   *   forward to the guest's port 22 (removed while it runs) — each with its own sentence and way out.
   */
  private async runningAccess(ref: string): Promise<SshAccess & { port: number }> {
    const access = await this.sshAccess(ref);
    if (!access.running) {
      throw errors.state(`"${access.name}" is not running.`, undefined, { remedy: { kind: 'start-vm', vm: access.name } });
    }
    const vm = await this.deps.vms.get(ref);
    if (vm.state === 'paused') {
      throw errors.state(`"${access.name}" is paused, so its SSH server cannot answer. Resume it first: vivarium resume ${shellQuote(access.name)}`);
    }
    if (access.port === null) {
      const port = await freeLoopbackPort().catch(() => 2222);
      throw errors.state(
        `"${access.name}" is running but no host port forwards to the guest's SSH port 22, so ssh and the Terminal tab cannot reach it. ` +
          `Add one: vivarium forward add ${shellQuote(access.name)} tcp:${port}:22`,
      );
    }
    return { ...access, port: access.port };
  }

  private async command(ref: string, words: readonly string[]): Promise<SshCommand> {
    const a = await this.runningAccess(ref);
    return buildSshCommand({ user: a.user, port: a.port, identityFile: a.identityFile, knownHostsFile: a.knownHostsFile }, { command: words });
  }

  /** Live forwards of a running VM (its command line's, then the changes made since), else the saved ones. */
  private async forwardsOf(vm: VmDetails): Promise<PortForward[]> {
    const config = requireConfig(vm);
    if (!running(vm)) return [...config.network.forwards];
    return liveForwardsOf(this.deps.layout.runtime(vm.id).dir, vm);
  }

  private async writeLive(id: string, forwards: readonly PortForward[]): Promise<void> {
    const file = path.join(this.deps.layout.runtime(id).dir, LIVE_FORWARDS_FILE);
    const startedAt = this.deps.vms.listSync().find((v) => v.id === id)?.startedAt ?? null;
    await writeFileAtomicAsync(file, JSON.stringify({ startedAt, forwards }), 0o600);
  }

  private async others(selfId: string): Promise<OtherVmForwards[]> {
    const out: OtherVmForwards[] = [];
    for (const v of await this.deps.vms.list()) {
      if (v.id === selfId || !v.config) continue;
      const saved = v.config.network.forwards;
      const live = running(v as VmDetails) ? await this.forwardsOf(await this.deps.vms.get(v.id)) : [];
      out.push({ name: v.name, forwards: [...saved, ...live] });
    }
    return out;
  }

  private async monitor(vm: VmDetails): Promise<QemuMonitor> {
    return new QemuMonitor(await this.deps.vms.qmpFor(vm.id));
  }

  private async save(config: VmConfig): Promise<void> {
    await this.deps.vms.store.saveAsync(config);
  }

  private assertStopped(vm: VmDetails, what: string): void {
    if (vm.state !== 'stopped') throw errors.mustStop(vm.name, vm.state, what);
  }
}

function requireConfig(vm: VmDetails): VmConfig {
  if (!vm.config) throw errors.state(`"${vm.name}" cannot be read: ${vm.error ?? 'its config is broken'}.`);
  return vm.config;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function info(f: PortForward): ForwardInfo {
  return { protocol: f.protocol, hostAddress: '127.0.0.1', hostPort: f.hostPort, guestPort: f.guestPort };
}
