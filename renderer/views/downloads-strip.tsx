/**
 * The library's downloads in progress (tester-9 #25): a slim strip under the host figures while an
 * OS image downloads, verifies, or waits paused — a download the New VM wizard left running in the
 * background stays visible, as GNOME Boxes and UTM show theirs. Each row: the file, a progress bar,
 * the wizard's progress sentence (bytes, rate, time left), and Stop or Resume. Nothing is shown
 * when no download is under way. Data: `media.downloads` and `media.onDidProgress`.
 */
import { useEffect, useState, type ReactNode } from 'react';
import type { DownloadInfo } from '../../main/common/contract/media';
import { useServices } from '../engine';
import { uiError } from '../lib/remedy';
import { formatDownload } from '../lib/wizard';

/** The downloads shown: under way or paused (done and failed ones are the wizard's to say). */
export function useActiveDownloads(): readonly DownloadInfo[] {
  const services = useServices();
  const [all, setAll] = useState<ReadonlyMap<string, DownloadInfo>>(new Map());
  useEffect(() => {
    let cancelled = false;
    services.media.downloads().then(
      (list) => !cancelled && setAll((m) => new Map([...list.map((d) => [d.id, d] as const), ...m])),
      () => undefined,
    );
    const sub = services.media.onDidProgress((d) => setAll((m) => new Map(m).set(d.id, d)));
    return () => {
      cancelled = true;
      sub.dispose();
    };
  }, [services]);
  return [...all.values()].filter((d) => d.state === 'downloading' || d.state === 'verifying' || d.state === 'paused');
}

export function DownloadsStrip(): ReactNode {
  const services = useServices();
  const downloads = useActiveDownloads();
  const [error, setError] = useState<string | null>(null);
  if (downloads.length === 0) return null;
  const act = (what: () => Promise<unknown>): void => {
    setError(null);
    what().catch((e: unknown) => setError(uiError(e).message));
  };
  return (
    <section className="downloads-strip" aria-label="Downloads">
      {downloads.map((d) => (
        <div key={d.id} className="download-row" data-testid="library-download">
          <span className="download-name">{d.name}</span>
          {d.totalBytes !== null && d.totalBytes > 0 && <progress className="download-bar" max={d.totalBytes} value={d.receivedBytes} aria-label={`${d.name} download progress`} />}
          <span className="muted download-text" role="status">
            {formatDownload(d)}
          </span>
          {d.state === 'paused' ? (
            <button type="button" className="btn btn-small" onClick={() => act(() => services.media.resume(d.id))}>
              Resume
            </button>
          ) : (
            d.state === 'downloading' && (
              <button type="button" className="btn btn-small" onClick={() => act(() => services.media.cancel(d.id))} aria-label={`Stop downloading ${d.name}`}>
                Stop
              </button>
            )
          )}
        </div>
      ))}
      {error && <p className="field-error">{error}</p>}
    </section>
  );
}
