import { useEffect, useState } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import { useServices } from '../engine';
import { wantsThumbnail } from '../lib/vm-actions';
import { usePageVisible } from './use-visibility';

export const THUMBNAIL_INTERVAL_MS = 5000;

/**
 * A data: URL of the VM's screen, refreshed every 5 s while the VM runs, its card is visible and the
 * page is shown. A paused VM keeps its last picture (fetched once if there is none); a stopped VM
 * has none. Failures keep the previous picture: a missed frame is not worth an error message.
 */
export function useThumbnail(vm: Pick<VmInfo, 'id' | 'state' | 'config'>, inView: boolean): string | null {
  const services = useServices();
  const pageVisible = usePageVisible();
  const [url, setUrl] = useState<string | null>(null);
  const wanted = wantsThumbnail(vm);
  const poll = wanted && vm.state === 'running' && inView && pageVisible;
  const once = wanted && vm.state === 'paused' && inView && url === null;

  useEffect(() => {
    if (!wanted) setUrl(null);
  }, [wanted]);

  useEffect(() => {
    if (!poll && !once) return;
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = (): void => {
      services.vms.screenshot(vm.id).then(
        (shot) => {
          if (!cancelled) setUrl(`data:image/png;base64,${shot.pngBase64}`);
        },
        () => undefined,
      ).finally(() => {
        if (!cancelled && poll) timer = setTimeout(tick, THUMBNAIL_INTERVAL_MS);
      });
    };
    tick();
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [services, vm.id, poll, once]);

  return url;
}
