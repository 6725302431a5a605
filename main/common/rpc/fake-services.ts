/**
 * A small in-memory stand-in for part of `Services`, for the RPC layer's own tests: it records
 * every call (so a test can prove a rejected call never reached it) and counts event listeners (so a
 * test can prove subscriptions are disposed). It is not a VM manager and must not be used as one.
 */
import { SERVICE_NAMES, type Disposable, type Services } from '../contract';
import { errors } from '../errors';
import type { StatsSample } from '../models/stats';
import type { VmChange, VmInfo } from '../models/vm-state';

export interface RecordedCall {
  readonly method: string;
  readonly args: readonly unknown[];
}

class Emitter<T> {
  private readonly listeners = new Set<(e: T) => void>();
  get size(): number {
    return this.listeners.size;
  }
  readonly event = (listener: (e: T) => void): Disposable => {
    // A fresh wrapper per subscription, so one listener subscribed twice counts twice.
    const wrapper = (e: T): void => listener(e);
    this.listeners.add(wrapper);
    return { dispose: () => void this.listeners.delete(wrapper) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
}

export function fakeVmInfo(name: string): VmInfo {
  return { id: `id-${name}`, name, state: 'stopped', pid: null, accel: 'auto', lastExit: null, error: null, config: null, path: `/vms/${name}`, startedAt: null };
}

export class FakeVms {
  readonly calls: RecordedCall[] = [];
  readonly changes = new Emitter<VmChange>();
  readonly onDidChange = this.changes.event;
  /** Calls to `pause` hang until released, to test what happens to calls in flight. */
  private readonly hanging: Array<() => void> = [];

  private record(method: string, args: readonly unknown[]): void {
    this.calls.push({ method, args });
  }
  async list(): Promise<readonly VmInfo[]> {
    this.record('list', []);
    return [fakeVmInfo('alpha'), fakeVmInfo('beta')];
  }
  async get(ref: string): Promise<VmInfo> {
    this.record('get', [ref]);
    if (ref === 'missing') throw errors.notFound(ref);
    return fakeVmInfo(ref);
  }
  async create(spec: unknown): Promise<unknown> {
    this.record('create', [spec]);
    return { ...fakeVmInfo((spec as { name: string }).name), received: spec };
  }
  async reset(ref: string): Promise<VmInfo> {
    this.record('reset', [ref]);
    throw new Error(`disk exploded at /secret/path for ${ref}`);
  }
  async pause(ref: string): Promise<VmInfo> {
    this.record('pause', [ref]);
    await new Promise<void>((resolve) => this.hanging.push(resolve));
    return fakeVmInfo(ref);
  }
  async screenshot(ref: string): Promise<unknown> {
    this.record('screenshot', [ref]);
    return { tooBig: BigInt(1) }; // JSON can't encode this: the reply must still arrive
  }
  releaseHanging(): void {
    for (const r of this.hanging.splice(0)) r();
  }
}

export class FakeStats {
  readonly samples = new Emitter<StatsSample>();
  readonly onDidSample = this.samples.event;
}

export function fakeServices(): { readonly services: Services; readonly vms: FakeVms; readonly stats: FakeStats } {
  const vms = new FakeVms();
  const stats = new FakeStats();
  // Every service of the contract exists (empty unless faked here), so the server's "not available"
  // path is reachable for the rest.
  const faked: Partial<Record<keyof Services, object>> = { vms, stats };
  const services = Object.fromEntries(SERVICE_NAMES.map((name) => [name, faked[name] ?? {}])) as unknown as Services;
  return { services, vms, stats };
}
