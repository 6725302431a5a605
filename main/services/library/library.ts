/**
 * The library: the VM bundles of one Vivarium home — find, list, resolve a reference. Plain data and
 * files (bundles/bundle-store.ts does the reading); nothing here knows about QEMU.
 */
import { ErrorCode, VivariumError } from '../../common/errors';
import { BundleStore, type BundleEntry } from '../bundles/bundle-store';
import type { Layout } from '../paths';
import { resolveRef } from './resolve';

export type OkEntry = Extract<BundleEntry, { ok: true }>;

export class Library {
  readonly store: BundleStore;

  constructor(readonly layout: Layout) {
    this.store = new BundleStore(layout);
  }

  /** Every bundle, broken ones included, in folder order. */
  entries(): BundleEntry[] {
    return this.store.list();
  }

  /** entries() without blocking the event loop (BundleStore.listAsync). */
  entriesAsync(): Promise<BundleEntry[]> {
    return this.store.listAsync();
  }

  /** The VM a reference means. @throws not-found, invalid-argument (ambiguous) */
  resolve(ref: string): BundleEntry {
    return resolveRef(this.store.list(), ref);
  }

  /** Like resolve, for VMs whose config must load. @throws broken-bundle */
  resolveOk(ref: string): OkEntry {
    return requireOk(this.resolve(ref));
  }
}

/** The entry when its config loads. @throws VivariumError broken-bundle */
export function requireOk(entry: BundleEntry): OkEntry {
  if (!entry.ok) {
    throw new VivariumError(ErrorCode.BrokenBundle, `VM "${entry.name ?? entry.id}" cannot be loaded: ${entry.error}`, { id: entry.id });
  }
  return entry;
}
