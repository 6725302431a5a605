import { describe, expect, it } from 'vitest';
import { errors } from '../../../common/errors';
import { VmConfig, type VmConfigInput } from '../../../common/models/vm-config';
import { Layout } from '../../paths';
import type { JobInfo } from '../../qemu/monitor';
import { QmpError, type QmpCloseInfo, type QmpEvent } from '../../qemu/qmp';
import type { RuntimeRecord } from '../../runtime/records';
import { isQemuEnded, parseNodeSnapshots, QemuSnapshotter, snapshotPlanOf, type JobMonitor } from './snapshotter';
import { argvHash } from './suspender';

const base: VmConfigInput = {
  version: 3,
  id: '3f2a9c01-b7de-4c1a-9d2e-0123456789ab',
  name: 'plan',
  createdAt: '2026-11-30T12:00:00.000Z',
  arch: 'x86_64',
  cpus: 1,
  memoryMiB: 256,
  network: { mac: '52:54:00:12:34:56' },
};
const config = (patch: Partial<VmConfigInput>) => VmConfig.parse({ ...base, ...patch });

describe('snapshotPlanOf', () => {
  it('covers every writable bundle qcow2 and the UEFI variable store; memory goes to the system disk', () => {
    const plan = snapshotPlanOf(
      config({
        firmware: 'uefi',
        uefiVars: 'efivars.qcow2',
        disks: [
          { id: 'disk1', role: 'data', source: { bundle: 'disk1.qcow2' }, format: 'qcow2' },
          { id: 'disk0', role: 'system', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' },
          { id: 'disk2', source: { path: '/srv/ro.img' }, format: 'raw', readOnly: true },
        ],
      }),
    );
    expect(plan.images.map((i) => [i.node, i.file])).toEqual([
      ['disk1', 'disk1.qcow2'],
      ['disk0', 'disk0.qcow2'],
      ['fw-vars', 'efivars.qcow2'],
    ]);
    expect(plan.vmstate?.node).toBe('disk0');
  });

  it('refuses a raw disk or a disk used in place, naming it', () => {
    expect(() => snapshotPlanOf(config({ disks: [{ id: 'disk0', source: { bundle: 'disk0.img' }, format: 'raw' }] }))).toThrow(/disk disk0 \(disk0\.img\) is a raw image/);
    expect(() => snapshotPlanOf(config({ disks: [{ id: 'disk3', source: { path: '/home/me/os.qcow2' }, format: 'qcow2' }] }))).toThrow(/disk disk3 is the image \/home\/me\/os\.qcow2, used in place/);
  });

  it('a VM without disks has nowhere to keep memory', () => {
    expect(snapshotPlanOf(config({}))).toEqual({ images: [], vmstate: null });
  });
});

describe('argvHash', () => {
  it('ignores -incoming (a resumed VM can be suspended again) and sees any other change', () => {
    const argv = ['/usr/bin/qemu-system-x86_64', '-m', '256'];
    expect(argvHash([...argv, '-incoming', 'unix:/r/incoming.sock'])).toBe(argvHash(argv));
    expect(argvHash(['/usr/bin/qemu-system-x86_64', '-m', '512'])).not.toBe(argvHash(argv));
  });

  it('ignores the host ports of user-mode forwards (a sandbox gets a fresh SSH port each start), not their guest side', () => {
    const net = (fwd: string) => ['/usr/bin/qemu-system-x86_64', '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,${fwd}`, '-m', '256'];
    expect(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22'))).toBe(argvHash(net('hostfwd=tcp:127.0.0.1:38011-:22')));
    expect(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22'))).not.toBe(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:2222')));
    expect(argvHash(net('hostfwd=udp:127.0.0.1:41234-:22'))).not.toBe(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22')));
    expect(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22'))).not.toBe(argvHash(net('hostfwd=tcp:0.0.0.0:41234-:22')));
  });
});

// Real answers of QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18) to
// {"execute":"query-named-block-nodes","arguments":{"flat":true}}, verbatim: a qcow2 node "disk0"
// right after a snapshot-save of a paused q35 guest with 64 MiB of RAM, and a fresh qcow2 "fw-vars"
// without snapshots (QEMU leaves `snapshots` out then), each over its file node.
const AFTER_SAVE = String.raw`{"return": [{"iops_rd": 0, "detect_zeroes": "off", "image": {"snapshots": [{"vm-clock-nsec": 0, "name": "snap-0123456789ab", "date-sec": 1796071215, "date-nsec": 979061000, "vm-clock-sec": 0, "id": "1", "vm-state-size": 433790}], "virtual-size": 67108864, "filename": "/tmp/qnbn/a.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 802816, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "dirty-flag": false}, "iops_wr": 0, "ro": false, "node-name": "disk0", "backing_file_depth": 0, "drv": "qcow2", "iops": 0, "bps_wr": 0, "write_threshold": 0, "encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "/tmp/qnbn/a.qcow2"}, {"iops_rd": 0, "detect_zeroes": "off", "image": {"virtual-size": 983040, "filename": "/tmp/qnbn/a.qcow2", "format": "file", "actual-size": 802816, "dirty-flag": false}, "iops_wr": 0, "ro": false, "node-name": "disk0-file", "backing_file_depth": 0, "drv": "file", "iops": 0, "bps_wr": 0, "write_threshold": 0, "encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "/tmp/qnbn/a.qcow2"}]}`;
const NO_SNAPSHOTS = String.raw`{"return": [{"iops_rd": 0, "detect_zeroes": "off", "image": {"virtual-size": 16777216, "filename": "/tmp/qnbn/b.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "dirty-flag": false}, "iops_wr": 0, "ro": false, "node-name": "fw-vars", "backing_file_depth": 0, "drv": "qcow2", "iops": 0, "bps_wr": 0, "write_threshold": 0, "encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "/tmp/qnbn/b.qcow2"}, {"iops_rd": 0, "detect_zeroes": "off", "image": {"virtual-size": 197120, "filename": "/tmp/qnbn/b.qcow2", "format": "file", "actual-size": 200704, "dirty-flag": false}, "iops_wr": 0, "ro": false, "node-name": "fw-vars-file", "backing_file_depth": 0, "drv": "file", "iops": 0, "bps_wr": 0, "write_threshold": 0, "encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "/tmp/qnbn/b.qcow2"}]}`;

describe('parseNodeSnapshots', () => {
  it("reads each node's internal snapshots and their saved VM state from QEMU's answer", () => {
    const nodes = parseNodeSnapshots((JSON.parse(AFTER_SAVE) as { return: unknown }).return);
    expect(nodes.get('disk0')).toEqual([{ tag: 'snap-0123456789ab', vmStateBytes: 433790, createdAt: new Date(1796071215 * 1000 + 979).toISOString() }]);
    expect(nodes.get('disk0-file')).toEqual([]);
  });

  it('a qcow2 node without snapshots holds none (not missing: the image is there)', () => {
    const nodes = parseNodeSnapshots((JSON.parse(NO_SNAPSHOTS) as { return: unknown }).return);
    expect(nodes.get('fw-vars')).toEqual([]);
    expect(nodes.has('disk0')).toBe(false);
  });

  it('an answer of another shape gives nothing rather than throwing', () => {
    expect(parseNodeSnapshots(null).size).toBe(0);
    expect(parseNodeSnapshots({ 'node-name': 'disk0' }).size).toBe(0);
    expect(parseNodeSnapshots([{ image: { snapshots: [{ name: 'x' }] } }, 7, null]).size).toBe(0);
    expect(parseNodeSnapshots([{ 'node-name': 'd', image: { snapshots: [{ id: '1' }, { name: 'snap-a', 'vm-state-size': 'big' }] } }]).get('d')).toEqual([
      { tag: 'snap-a', vmStateBytes: 0 },
    ]);
  });
});

// ---- the job wait, over a fake monitor (what QEMU 7.2 sends, in the order it sends it) ----------

/** A fake QMP monitor for one snapshot-save job. `script` decides what happens once the command is
 *  sent: QEMU's events, then the command's answer (a snapshot job holds QEMU's main loop, so its
 *  answer comes with the job's last events), or a close (the VM forced off). Records every command. */
function fakeMonitor(script: (f: { event: (status: string) => void; close: () => void; jobId: string }) => Promise<void>, jobError: string | null = null) {
  const sent: string[] = [];
  const events = new Set<(e: QmpEvent) => void>();
  const closes = new Set<(i: QmpCloseInfo) => void>();
  let jobId = '';
  let status = 'none';
  const m: JobMonitor = {
    async snapshotSave(id) {
      sent.push('snapshot-save');
      jobId = id;
      await script({
        jobId: id,
        event: (s) => {
          status = s;
          for (const l of events) l({ event: 'JOB_STATUS_CHANGE', data: { id, status: s }, timestamp: { seconds: 0, microseconds: 0 } });
        },
        close: () => {
          for (const l of closes) l({ sawShutdown: false, shutdownReason: null, error: null });
          throw new Error('the connection to QEMU is closed');
        },
      });
    },
    snapshotLoad: () => Promise.reject(new Error('not used')),
    snapshotDelete: () => Promise.reject(new Error('not used')),
    async queryJobs(): Promise<readonly JobInfo[]> {
      sent.push('query-jobs');
      return [{ id: jobId, type: 'snapshot-save', status, currentProgress: 1, totalProgress: 1, error: jobError }];
    },
    async jobDismiss() {
      sent.push('job-dismiss');
    },
    async hasChardev() {
      sent.push('query-chardev');
      return false;
    },
    unplugSerialPort: () => Promise.reject(new Error('not used')),
    plugVdagentPort: () => Promise.reject(new Error('not used')),
    async queryNamedBlockNodes() {
      sent.push('query-named-block-nodes');
      return (JSON.parse(AFTER_SAVE) as { return: unknown }).return;
    },
    onEvent: (l) => (events.add(l), { dispose: () => void events.delete(l) }),
    onClose: (l) => (closes.add(l), { dispose: () => void closes.delete(l) }),
  };
  return { m, sent, listeners: () => events.size + closes.size };
}

const running = { pid: 1, supervisorPid: 1, id: base.id, startedAt: '', accel: 'tcg', argv: [], status: 'running' } as RuntimeRecord;
const diskVm = { id: base.id, config: config({ disks: [{ id: 'disk0', role: 'system', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' }] }) };
const snapshotterWith = (m: JobMonitor) =>
  new QemuSnapshotter({
    layout: new Layout('/nonexistent/home', '/nonexistent/run'),
    qemuImg: () => Promise.reject(new Error('qemu-img must not run for a running VM')),
    monitor: async () => m,
  });

describe('QemuSnapshotter, a running VM', () => {
  it('follows the job by its events: concluded before the command answers, then one query-jobs and job-dismiss (no polling)', async () => {
    const f = fakeMonitor(async ({ event }) => {
      for (const s of ['created', 'running', 'waiting', 'pending', 'concluded']) event(s);
    });
    const progress: number[] = [];
    await snapshotterWith(f.m).save(diskVm, running, 'snap-0123456789ab', (x) => progress.push(x));
    expect(f.sent).toEqual(['query-chardev', 'snapshot-save', 'query-jobs', 'job-dismiss']);
    expect(progress).toEqual([1]);
    expect(f.listeners()).toBe(0);
  });

  it('waits for the concluded event when the command answers first', async () => {
    let conclude!: () => void;
    const f = fakeMonitor(async ({ event }) => {
      event('running');
      conclude = () => event('concluded');
    });
    let done = false;
    const saving = snapshotterWith(f.m)
      .save(diskVm, running, 'snap-0123456789ab')
      .then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    expect(f.sent).not.toContain('query-jobs');
    conclude();
    await saving;
    expect(f.sent.slice(-2)).toEqual(['query-jobs', 'job-dismiss']);
  });

  it("a job that concluded with an error is QEMU's sentence; the VM forced off mid-save is said as such", async () => {
    const failed = fakeMonitor(async ({ event }) => event('concluded'), 'No space left on device');
    await expect(snapshotterWith(failed.m).save(diskVm, running, 'snap-0123456789ab')).rejects.toThrow(/QEMU could not save the snapshot of "plan": No space left on device/);
    const killed = fakeMonitor(async ({ event, close }) => {
      event('running');
      close();
    });
    await expect(snapshotterWith(killed.m).save(diskVm, running, 'snap-0123456789ab')).rejects.toThrow(/^"plan" stopped \(forced off, or QEMU ended\) while a snapshot of it was being saved\.$/);
    expect(killed.listeners()).toBe(0);
  });

  it("QEMU's refusal of the job command is its reason, without the command's name", async () => {
    const f = fakeMonitor(async () => {
      throw new QmpError('GenericError', "Device 'disk0' is writable but does not support snapshots", 'snapshot-save');
    });
    await expect(snapshotterWith(f.m).save(diskVm, running, 'snap-0123456789ab')).rejects.toThrow(/^QEMU could not save the snapshot of "plan": Device 'disk0' is writable but does not support snapshots$/);
    expect(f.listeners()).toBe(0);
  });

  it('QEMU gone after the job concluded but before query-jobs answered: no QEMU command name, and the error says QEMU ended (tester-s6 #1)', async () => {
    const f = fakeMonitor(async ({ event }) => event('concluded'));
    // What QmpClient says to every pending command when QEMU exits (qmp.ts lostError).
    f.m.queryJobs = () => Promise.reject(errors.state('The action did not finish: QEMU shut down.', { qmpLost: true, lostWhile: 'running "query-jobs"' }));
    const e = await snapshotterWith(f.m).save(diskVm, running, 'snap-0123456789ab').then(() => null, (x: unknown) => x);
    expect(isQemuEnded(e)).toBe(true);
    expect((e as Error).message).not.toMatch(/query-jobs|"query-|snapshot-save/);
    expect(f.listeners()).toBe(0);
  });

  it("reads what the images hold from QEMU's block nodes, by bundle file", async () => {
    const f = fakeMonitor(async () => undefined);
    const held = await snapshotterWith(f.m).imageSnapshots(diskVm, running);
    expect([...held]).toEqual([['disk0.qcow2', [{ tag: 'snap-0123456789ab', vmStateBytes: 433790, createdAt: new Date(1796071215 * 1000 + 979).toISOString() }]]]);
    expect(f.sent).toEqual(['query-named-block-nodes']);
  });
});
