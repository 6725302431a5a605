/**
 * The typed QEMU monitor: one method per QMP command Vivarium uses, over a QmpClient (as libvirt's
 * qemu_monitor.c sits over its JSON transport). No QMP command string appears above this file.
 *
 * Command reference: QEMU's qapi/*.json (docs/interop/qemu-qmp-ref), names and argument shapes as of
 * QEMU 7.2.
 */
import type { Disposable, QmpClient, QmpCloseInfo, QmpEvent } from './qmp';

/** query-status `status` (qapi/run-state.json RunState). Newer QEMUs may add values. */
export type QemuRunState =
  | 'debug'
  | 'inmigrate'
  | 'internal-error'
  | 'io-error'
  | 'paused'
  | 'postmigrate'
  | 'prelaunch'
  | 'finish-migrate'
  | 'restore-vm'
  | 'running'
  | 'save-vm'
  | 'shutdown'
  | 'suspended'
  | 'watchdog'
  | 'guest-panicked'
  | 'colo';

/** query-status's answer. `running` is false whenever the vCPUs are stopped, for any reason. */
export interface StatusInfo {
  readonly running: boolean;
  readonly status: QemuRunState | (string & {});
}

/** What the service layer may ask of a VM's monitor (the QEMU driver's port; tests fake it). */
export interface Monitor {
  /** query-status: whether the vCPUs run, and QEMU's run state (why they do not). */
  queryStatus(): Promise<StatusInfo>;
  /** system_powerdown: presses the ACPI power button; the guest decides what to do. */
  systemPowerdown(): Promise<void>;
  /** quit: QEMU exits at once (the guest gets no say). Resolves when QEMU answered or closed. */
  quit(options?: { readonly timeoutMs?: number }): Promise<void>;
  /** stop: pauses the vCPUs. */
  stop(): Promise<void>;
  /** cont: resumes the vCPUs (also from io-error, once the cause is fixed). */
  cont(): Promise<void>;
  /** system_reset: the reset button. */
  systemReset(): Promise<void>;
  /** send-key: presses `qcodes` together ("ctrl", "alt", "delete") for `holdTimeMs` (default 100 ms). */
  sendKey(qcodes: readonly string[], holdTimeMs?: number): Promise<void>;
  /** screendump: writes the display to `file` as PNG (QEMU 7.1+ `format`). */
  screendump(file: string): Promise<void>;
  /** query-uuid: the `-uuid` QEMU runs with (a Vivarium VM's id). */
  queryUuid(): Promise<string>;
  /** human-monitor-command: runs an HMP line, returns its text; HMP's printed errors reject. */
  humanMonitorCommand(commandLine: string, options?: { readonly timeoutMs?: number }): Promise<string>;
  onEvent(listener: (e: QmpEvent) => void): Disposable;
  onClose(listener: (info: QmpCloseInfo) => void): Disposable;
  readonly closed: boolean;
  close(): void;
}

/** One QMP job as `query-jobs` reports it (qapi/job.json JobInfo). */
export interface JobInfo {
  readonly id: string;
  readonly type: string;
  /** created, running, paused, ready, standby, waiting, pending, aborting, concluded, undefined, null */
  readonly status: string;
  readonly currentProgress: number;
  readonly totalProgress: number;
  /** Set once a concluded job failed: QEMU's reason. */
  readonly error: string | null;
}

/** The internal snapshot jobs of QEMU 6.0+ (qapi/migration.json snapshot-save/-load/-delete) and the
 *  generic job commands that follow them (qapi/job.json). */
export interface SnapshotJobMonitor {
  /** snapshot-save: starts job `jobId` that saves tag `tag` on `devices` (format node names), the
   *  VM state (RAM, devices) on node `vmstate`. */
  snapshotSave(jobId: string, tag: string, vmstate: string, devices: readonly string[]): Promise<void>;
  /** snapshot-load: starts job `jobId` that reverts `devices` and the VM state to tag `tag`. */
  snapshotLoad(jobId: string, tag: string, vmstate: string, devices: readonly string[]): Promise<void>;
  /** snapshot-delete: starts job `jobId` that deletes tag `tag` from `devices`. */
  snapshotDelete(jobId: string, tag: string, devices: readonly string[]): Promise<void>;
  /** query-jobs: every job QEMU has, concluded ones until dismissed. */
  queryJobs(): Promise<readonly JobInfo[]>;
  /** job-dismiss: forgets a concluded job. */
  jobDismiss(jobId: string): Promise<void>;
  /** query-named-block-nodes with `flat` (qapi/block-core.json BlockDeviceInfo[]), as QEMU sent it:
   *  each node's `node-name` and `image` (ImageInfo, with `snapshots` when it holds any). */
  queryNamedBlockNodes(): Promise<unknown>;
  /** query-chardev: whether QEMU has a character device with this id. */
  hasChardev(id: string): Promise<boolean>;
  /** device_del of virtio-serial port `qdevId` (gone at once: no guest handshake), then chardev-remove of `chardevId`. */
  unplugSerialPort(qdevId: string, chardevId: string): Promise<void>;
  /** chardev-add of a qemu-vdagent `chardevId` (clipboard on, mouse off; qapi/char.json
   *  ChardevQemuVDAgent), then device_add of virtserialport `qdevId` on `bus` with port name `name`. */
  plugVdagentPort(chardevId: string, qdevId: string, bus: string, name: string): Promise<void>;
}

/** query-migrate's answer (qapi/migration.json MigrationInfo), the parts Vivarium reads. */
export interface MigrationInfo {
  /** none, setup, active, completed, failed, cancelled, … */
  readonly status: string;
  /** RAM bytes sent so far and in all (0 when unknown). */
  readonly transferredBytes: number;
  readonly totalBytes: number;
  readonly error: string | null;
}

/** Migration to a stream (suspend to disk, qemu-notes §3 "Save state / suspend to file"). */
export interface MigrationMonitor {
  /** migrate-set-parameters max-bandwidth (bytes/s): a suspend is not throttled like a live move. */
  migrateSetMaxBandwidth(bytesPerSecond: number): Promise<void>;
  /** migrate: starts sending the VM's state to `uri` ("unix:/path"). */
  migrate(uri: string): Promise<void>;
  /** query-migrate: how the outgoing or incoming migration is doing. */
  queryMigrate(): Promise<MigrationInfo>;
}

export class QemuMonitor implements Monitor, SnapshotJobMonitor, MigrationMonitor {
  constructor(readonly client: QmpClient) {}

  async queryStatus(): Promise<StatusInfo> {
    const r = await this.client.execute<{ running?: unknown; status?: unknown }>('query-status');
    return { running: r.running === true, status: typeof r.status === 'string' ? r.status : 'unknown' };
  }

  async systemPowerdown(): Promise<void> {
    await this.client.execute('system_powerdown');
  }

  async quit(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    await this.client.execute('quit', {}, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  }

  async stop(): Promise<void> {
    await this.client.execute('stop');
  }

  async cont(): Promise<void> {
    await this.client.execute('cont');
  }

  async systemReset(): Promise<void> {
    await this.client.execute('system_reset');
  }

  async sendKey(qcodes: readonly string[], holdTimeMs = 100): Promise<void> {
    await this.client.execute('send-key', { keys: qcodes.map((k) => ({ type: 'qcode', data: k })), 'hold-time': holdTimeMs });
  }

  async screendump(file: string): Promise<void> {
    await this.client.execute('screendump', { filename: file, format: 'png' });
  }

  async queryUuid(): Promise<string> {
    const r = await this.client.execute<{ UUID?: unknown }>('query-uuid');
    return typeof r.UUID === 'string' ? r.UUID : '';
  }

  humanMonitorCommand(commandLine: string, options: { readonly timeoutMs?: number } = {}): Promise<string> {
    return this.client.hmp(commandLine, options);
  }

  /**
   * hostfwd_add (HMP; QMP has no command for it in QEMU 7.2): adds `rule`
   * (`tcp|udp:HOSTADDR:HOSTPORT-[GUESTADDR]:GUESTPORT`) to user-mode netdev `netdev` of a running VM.
   * QEMU prints its refusal ("Could not set up host forwarding rule …") instead of failing: rejects then.
   */
  async hostfwdAdd(netdev: string, rule: string): Promise<void> {
    const out = (await this.client.hmp(`hostfwd_add ${netdev} ${rule}`)).trim();
    if (/could not|invalid|not found|error/i.test(out)) throw new Error(out);
  }

  /** hostfwd_remove (HMP): removes the forward of `rule` (`tcp|udp:HOSTADDR:HOSTPORT`); rejects with
   *  QEMU's words when there is none. */
  async hostfwdRemove(netdev: string, rule: string): Promise<void> {
    const out = (await this.client.hmp(`hostfwd_remove ${netdev} ${rule}`)).trim();
    if (/could not|invalid|not found|error/i.test(out)) throw new Error(out);
  }

  async snapshotSave(jobId: string, tag: string, vmstate: string, devices: readonly string[]): Promise<void> {
    await this.client.execute('snapshot-save', { 'job-id': jobId, tag, vmstate, devices: [...devices] });
  }

  async snapshotLoad(jobId: string, tag: string, vmstate: string, devices: readonly string[]): Promise<void> {
    await this.client.execute('snapshot-load', { 'job-id': jobId, tag, vmstate, devices: [...devices] });
  }

  async snapshotDelete(jobId: string, tag: string, devices: readonly string[]): Promise<void> {
    await this.client.execute('snapshot-delete', { 'job-id': jobId, tag, devices: [...devices] });
  }

  async queryJobs(): Promise<readonly JobInfo[]> {
    const r = await this.client.execute<unknown>('query-jobs');
    if (!Array.isArray(r)) return [];
    return r.map((j: Record<string, unknown>) => ({
      id: String(j.id),
      type: String(j.type),
      status: String(j.status),
      currentProgress: typeof j['current-progress'] === 'number' ? j['current-progress'] : 0,
      totalProgress: typeof j['total-progress'] === 'number' ? j['total-progress'] : 0,
      error: typeof j.error === 'string' ? j.error : null,
    }));
  }

  /** block_resize: grows the image under format node `nodeName` to `sizeBytes` (the guest sees a
   *  capacity change at once: virtio-blk raises a config interrupt). */
  async blockResize(nodeName: string, sizeBytes: number): Promise<void> {
    await this.client.execute('block_resize', { 'node-name': nodeName, size: sizeBytes });
  }

  /** blockdev-change-medium: opens `filename` as `format` read-only and puts it in removable-media
   *  device `qdevId` (qapi/block.json; the old medium is ejected first). */
  async blockdevChangeMedium(qdevId: string, filename: string, format: string): Promise<void> {
    await this.client.execute('blockdev-change-medium', { id: qdevId, filename, format, 'read-only-mode': 'read-only' });
  }

  /** eject: empties removable-media device `qdevId`; `force` opens a tray the guest locked. */
  async eject(qdevId: string, force = true): Promise<void> {
    await this.client.execute('eject', { id: qdevId, force });
  }

  /** query-block: per block device its qdev id, whether it is removable, and the inserted image's
   *  file name (null when empty). */
  async queryBlock(): Promise<readonly { readonly qdev: string; readonly removable: boolean; readonly file: string | null; readonly trayOpen: boolean | null }[]> {
    const r = await this.client.execute<unknown>('query-block');
    if (!Array.isArray(r)) return [];
    return r.map((b: Record<string, unknown>) => {
      const inserted = b.inserted as { file?: unknown } | undefined;
      return {
        qdev: typeof b.qdev === 'string' ? b.qdev : '',
        removable: b.removable === true,
        file: inserted && typeof inserted.file === 'string' ? inserted.file : null,
        trayOpen: typeof b.tray_open === 'boolean' ? b.tray_open : null,
      };
    });
  }

  async jobDismiss(jobId: string): Promise<void> {
    await this.client.execute('job-dismiss', { id: jobId });
  }

  queryNamedBlockNodes(): Promise<unknown> {
    return this.client.execute<unknown>('query-named-block-nodes', { flat: true });
  }

  async hasChardev(id: string): Promise<boolean> {
    const r = await this.client.execute<unknown>('query-chardev');
    return Array.isArray(r) && r.some((c: { label?: unknown }) => c.label === id);
  }

  async unplugSerialPort(qdevId: string, chardevId: string): Promise<void> {
    await this.client.execute('device_del', { id: qdevId });
    // The port lets go of its chardev a moment after device_del returns ("Chardev … is busy").
    for (let i = 0; ; i++) {
      try {
        await this.client.execute('chardev-remove', { id: chardevId });
        return;
      } catch (e) {
        if (i >= 100 || !/busy/i.test((e as Error).message)) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async plugVdagentPort(chardevId: string, qdevId: string, bus: string, name: string): Promise<void> {
    if (!(await this.hasChardev(chardevId))) {
      await this.client.execute('chardev-add', { id: chardevId, backend: { type: 'qemu-vdagent', data: { clipboard: true, mouse: false } } });
    }
    try {
      await this.client.execute('device_add', { driver: 'virtserialport', bus, chardev: chardevId, id: qdevId, name });
    } catch (e) {
      if (!/duplicate/i.test((e as Error).message)) throw e; // still there: nothing to put back
    }
  }

  async migrateSetMaxBandwidth(bytesPerSecond: number): Promise<void> {
    await this.client.execute('migrate-set-parameters', { 'max-bandwidth': bytesPerSecond });
  }

  async migrate(uri: string): Promise<void> {
    await this.client.execute('migrate', { uri });
  }

  async queryMigrate(): Promise<MigrationInfo> {
    const r = await this.client.execute<{ status?: unknown; ram?: { transferred?: unknown; total?: unknown }; 'error-desc'?: unknown }>('query-migrate');
    const n = (v: unknown) => (typeof v === 'number' ? v : 0);
    return {
      status: typeof r.status === 'string' ? r.status : 'none',
      transferredBytes: n(r.ram?.transferred),
      totalBytes: n(r.ram?.total),
      error: typeof r['error-desc'] === 'string' ? r['error-desc'] : null,
    };
  }

  onEvent(listener: (e: QmpEvent) => void): Disposable {
    return this.client.onEvent(listener);
  }

  onClose(listener: (info: QmpCloseInfo) => void): Disposable {
    return this.client.onClose(listener);
  }

  get closed(): boolean {
    return this.client.closed;
  }

  close(): void {
    this.client.close();
  }
}
