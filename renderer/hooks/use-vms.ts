/** Live views of the engine's VMs: the whole library, or one VM for its window. */
import { useCallback, useEffect, useState } from 'react';
import type { VmChange, VmInfo } from '../../main/common/models/vm-state';
import { ErrorCode, isVivariumError } from '../../main/common/errors';
import { useServices } from '../engine';
import { errorMessage } from '../lib/errors';
import { applyVmChange, vmMapFrom, type VmMap } from '../lib/vm-list';

export type Loadable<T> =
  | { readonly kind: 'loading' }
  | { readonly kind: 'ready'; readonly value: T }
  | { readonly kind: 'error'; readonly message: string };

/** Every VM, kept current by `vms.onDidChange`. Events that arrive before the first list are
 *  replayed over it, so nothing is lost in between. */
export function useVmList(): { readonly list: Loadable<VmMap>; readonly upsert: (vm: VmInfo) => void } {
  const services = useServices();
  const [state, setState] = useState<Loadable<VmMap>>({ kind: 'loading' });

  useEffect(() => {
    let cancelled = false;
    let pending: VmChange[] | null = [];
    const sub = services.vms.onDidChange((change) => {
      if (pending) pending.push(change);
      else setState((s) => (s.kind === 'ready' ? { kind: 'ready', value: applyVmChange(s.value, change) } : s));
    });
    services.vms.list().then(
      (list) => {
        if (cancelled) return;
        const value = (pending ?? []).reduce(applyVmChange, vmMapFrom(list));
        pending = null;
        setState({ kind: 'ready', value });
      },
      (e: unknown) => {
        if (!cancelled) setState({ kind: 'error', message: errorMessage(e) });
      },
    );
    return () => {
      cancelled = true;
      sub.dispose();
    };
  }, [services]);

  // Folds in a VmInfo an action returned (a new VM shows at once, whatever the event timing).
  const upsert = useCallback(
    (vm: VmInfo) => setState((s) => (s.kind === 'ready' ? { kind: 'ready', value: applyVmChange(s.value, { kind: 'updated', vm }) } : s)),
    [],
  );
  return { list: state, upsert };
}

export type VmView =
  | { readonly kind: 'loading' }
  | { readonly kind: 'ready'; readonly vm: VmInfo }
  | { readonly kind: 'removed' }
  | { readonly kind: 'error'; readonly message: string };

/** One VM by id, kept current; `apply` folds in the VmInfo an action returned. */
export function useVm(id: string): { readonly view: VmView; readonly apply: (vm: VmInfo) => void } {
  const services = useServices();
  const [view, setView] = useState<VmView>({ kind: 'loading' });

  useEffect(() => {
    let cancelled = false;
    let seenEvent = false;
    // No reset to "loading" here: after an engine reconnect the window keeps showing the VM while it
    // refreshes (a different id remounts the window, see app.tsx).
    const sub = services.vms.onDidChange((change) => {
      if (change.kind === 'updated' && change.vm.id === id) {
        seenEvent = true;
        setView({ kind: 'ready', vm: change.vm });
      } else if (change.kind === 'removed' && change.id === id) {
        seenEvent = true;
        setView({ kind: 'removed' });
      }
    });
    // The same source as the library (`list`), not `get`: a list reads each running VM's live state
    // (a QEMU stopped with kill -STOP is "not responding"), and the engine announces that only when it
    // changes, so a window opened afterwards would otherwise show plain "Running" while the card says
    // it is not responding. `get` adds what only it checks (a config that can no longer start, e.g. a
    // missing disk) and answers NotFound for a VM that is gone (→ removed).
    Promise.all([services.vms.list(), services.vms.get(id)])
      .then(([all, details]): VmInfo => {
        const listed = all.find((v) => v.id === id);
        return listed ? { ...listed, error: listed.error ?? details.error } : details;
      })
      .then(
        (vm) => {
          if (!cancelled && !seenEvent) setView({ kind: 'ready', vm });
        },
        (e: unknown) => {
          if (cancelled || seenEvent) return;
          if (isVivariumError(e) && e.code === ErrorCode.NotFound) setView({ kind: 'removed' });
          else setView({ kind: 'error', message: errorMessage(e) });
        },
      );
    return () => {
      cancelled = true;
      sub.dispose();
    };
  }, [services, id]);

  const apply = useCallback(
    (vm: VmInfo) => setView((v) => (vm.id === id && v.kind !== 'removed' ? { kind: 'ready', vm } : v)),
    [id],
  );
  return { view, apply };
}
