/** The long operation (snapshot save, revert, suspend, clone, export) running on a VM, live. */
import { useEffect, useState } from 'react';
import type { SnapshotProgressEvent } from '../../main/common/contract/snapshots';
import { useServices } from '../engine';

/**
 * What runs on VM `vmId` as the engine's `snapshots.onDidProgress` reports it, null when nothing
 * does. A page opened (or reloaded) in the middle of an operation first asks `snapshots.jobs`, until
 * the operation's own events take over (an event newer than that answer wins). Whoever started it
 * (this page, a dialog, another window, the CLI through the same engine) does not matter: the
 * engine runs one at a time per VM.
 */
export function useVmOperation(vmId: string): SnapshotProgressEvent | null {
  const services = useServices();
  const [operation, setOperation] = useState<SnapshotProgressEvent | null>(null);
  useEffect(() => {
    let evented = false;
    let on = true;
    services.snapshots.jobs(vmId).then(
      (jobs) => {
        const j = jobs[0];
        if (!on || !j || evented) return;
        setOperation({ vmId: j.vmId, operation: j.operation, fraction: j.fraction ?? 0, done: false, ...(j.fraction === null ? { indeterminate: true } : {}), ...(j.snapshot ? { snapshot: j.snapshot } : {}) });
      },
      () => undefined, // an engine from before `jobs`
    );
    const sub = services.snapshots.onDidProgress((e) => {
      if (e.vmId !== vmId) return;
      evented = true;
      setOperation(e.done ? null : e);
    });
    return () => {
      on = false;
      sub.dispose();
    };
  }, [services, vmId]);
  return operation;
}
