/**
 * Choosing a host file from the UI. In the desktop app: the system's own Open dialog; in a browser, which cannot see host paths: a chooser served by the
 * engine (`host.browse`), rooted at the user's home folder, listing folders and ISO/disk images
 * (or the files a filter names), or picking a folder itself (filter `folder`: "Choose this folder").
 * The desktop app's helpers come with the preload's bridge (`window.vivarium.files`).
 */
import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import type { BrowseFilter, BrowseListing } from '../../main/common/contract/host';
import type { DesktopFiles } from '../../main/common/rpc/protocol';
import { formatBytes } from '../lib/format';
import { uiError } from '../lib/remedy';
import { useServices } from '../engine';
import { Dialog } from './dialog';
import { CheckboxField, FormError } from './fields';

/** The desktop app's file helpers, or null in a browser. */
export function desktopFiles(): DesktopFiles | null {
  return typeof window !== 'undefined' ? (window.vivarium?.files ?? null) : null;
}

/** The path of a dropped file, or null where the page cannot know it (a browser). */
export function droppedPath(file: File): string | null {
  const files = desktopFiles();
  if (!files) return null;
  try {
    const p = files.pathForFile(file);
    return p === '' ? null : p;
  } catch {
    return null;
  }
}

/** The engine's chooser: a modal listing of one folder at a time. */
export function FileChooserDialog(props: { readonly title: string; readonly filter: BrowseFilter; readonly start?: string; readonly onChoose: (path: string) => void; readonly onClose: () => void }): ReactNode {
  const services = useServices();
  const [listing, setListing] = useState<BrowseListing | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Keys live in ~/.ssh: hidden names are shown from the start when choosing one.
  const [showHidden, setShowHidden] = useState(props.filter === 'ssh-key');
  const [where, setWhere] = useState<string | undefined>(props.start);
  const listRef = useRef<HTMLUListElement>(null);
  const listId = useId();

  useEffect(() => {
    let cancelled = false;
    services.host.browse({ ...(where ? { path: where } : {}), filter: props.filter, showHidden }).then(
      (l) => {
        if (cancelled) return;
        setListing(l);
        setError(null);
      },
      (e: unknown) => {
        if (cancelled) return;
        setError(uiError(e).message);
        // A start folder that is gone or outside home: fall back to home once.
        if (where !== undefined && listing === null) setWhere(undefined);
      },
    );
    return () => {
      cancelled = true;
    };
    // `listing` is read only for the fallback; a new listing must not list again.
  }, [services, where, props.filter, showHidden]);

  // Each listing shown puts the focus on its first entry (after React has rendered it: a
  // requestAnimationFrame may run before the commit and find no entry).
  useEffect(() => {
    if (listing) listRef.current?.querySelector<HTMLElement>('button')?.focus();
  }, [listing]);

  /** Up and Down move between entries, Home/End to the ends, Backspace goes up a folder. */
  const onKeyDown = (e: KeyboardEvent<HTMLUListElement>): void => {
    const items = Array.from(listRef.current?.querySelectorAll<HTMLElement>('button') ?? []);
    const i = items.indexOf(document.activeElement as HTMLElement);
    const go = (n: number): void => {
      e.preventDefault();
      items[Math.max(0, Math.min(items.length - 1, n))]?.focus();
    };
    if (e.key === 'ArrowDown') go(i + 1);
    else if (e.key === 'ArrowUp') go(i - 1);
    else if (e.key === 'Home') go(0);
    else if (e.key === 'End') go(items.length - 1);
    else if (e.key === 'Backspace' && listing?.parent) {
      e.preventDefault();
      setWhere(listing.parent);
    }
  };

  const what = { iso: 'ISO images', disk: 'disk images and appliances', images: 'ISO and disk images', 'ssh-key': 'SSH public keys (.pub)', any: 'files', folder: 'nothing else', vivarium: 'Vivarium exports (.vivarium)' }[props.filter];
  // Folder mode: folders open on click; the folder shown is chosen with "Choose this folder".
  const folderMode = props.filter === 'folder';
  return (
    <Dialog title={props.title} onClose={props.onClose} className="dialog-chooser">
      <p className="chooser-where">
        <span className="muted">Folder: </span>
        <span className="chooser-path" data-testid="chooser-path">
          {listing?.path ?? '…'}
        </span>
      </p>
      <div className="chooser-bar">
        <button type="button" className="btn btn-small" disabled={!listing?.parent} onClick={() => listing?.parent && setWhere(listing.parent)}>
          Up
        </button>
        <button type="button" className="btn btn-small" disabled={!listing || listing.parent === null} onClick={() => setWhere(listing?.root)}>
          Home
        </button>
        <CheckboxField label="Show hidden files" checked={showHidden} onChecked={setShowHidden} />
      </div>
      <FormError message={error} />
      <p id={listId} className="field-hint">
        {folderMode ? 'Folders in your home folder: open one, then choose it. A folder elsewhere: type its path.' : `Folders and ${what} in your home folder. Files elsewhere: type their path.`}
      </p>
      {/* Focus starts on the list (the list itself until its entries arrive, then the first entry),
          not on Up/Home/"Show hidden files": picking a file is what the chooser is for. */}
      <ul ref={listRef} className="chooser-list" aria-describedby={listId} aria-label="Files and folders" onKeyDown={onKeyDown} tabIndex={-1} data-autofocus>
        {listing?.entries.map((e) => (
          <li key={e.path}>
            <button
              type="button"
              className={`chooser-entry chooser-${e.kind}`}
              onClick={() => (e.kind === 'dir' ? setWhere(e.path) : props.onChoose(e.path))}
              aria-label={e.kind === 'dir' ? `${e.name} (folder)` : `${e.name}, ${formatBytes(e.sizeBytes ?? 0)}`}
            >
              <span className="chooser-name">{e.kind === 'dir' ? `${e.name}/` : e.name}</span>
              {e.kind === 'file' && <span className="muted">{formatBytes(e.sizeBytes ?? 0)}</span>}
            </button>
          </li>
        ))}
        {listing && listing.entries.length === 0 && <li className="muted chooser-empty">{folderMode ? 'No folders inside this one.' : `No folders or ${what} here.`}</li>}
      </ul>
      {listing?.truncated && <p className="field-hint">Only the first {listing.entries.length} entries are shown; type the path of a file not listed.</p>}
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={props.onClose}>
          Cancel
        </button>
        {folderMode && (
          <button type="button" className="btn btn-primary" disabled={!listing} onClick={() => listing && props.onChoose(listing.path)}>
            Choose this folder
          </button>
        )}
      </div>
    </Dialog>
  );
}

/**
 * A Browse button: the system dialog in the desktop app, else the engine's chooser. Calls `onPath`
 * with the chosen file (filter `folder`: the chosen folder).
 */
export function BrowseButton(props: { readonly label: string; readonly filter: BrowseFilter; readonly current: string; readonly onPath: (p: string) => void; readonly disabled?: boolean }): ReactNode {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const click = async (): Promise<void> => {
    const files = desktopFiles();
    if (!files) {
      setOpen(true);
      return;
    }
    try {
      const p = await files.chooseFile({ filter: props.filter, title: props.label });
      if (p) props.onPath(p);
    } catch (e) {
      setError(uiError(e).message);
    }
  };
  // The chooser opens where the current value is: its folder (a folder itself in folder mode).
  const dir = props.filter === 'folder' && props.current.startsWith('/') ? props.current : props.current.includes('/') ? props.current.slice(0, props.current.lastIndexOf('/')) || undefined : undefined;
  return (
    <>
      <button type="button" className="btn browse-btn" onClick={() => void click()} disabled={props.disabled} aria-label={`Browse for ${props.label.toLowerCase()}`}>
        Browse…
      </button>
      {error && <FormError message={error} />}
      {open &&
        // In a portal, and keys stopped at its edge: the chooser opens over another dialog (the
        // wizard), whose own Tab handling must not see the chooser's keys.
        createPortal(
          <div className="chooser-layer" onKeyDown={(e) => e.stopPropagation()}>
        <FileChooserDialog
          title={props.label}
          filter={props.filter}
          {...(dir ? { start: dir } : {})}
          onClose={() => setOpen(false)}
          onChoose={(p) => {
            setOpen(false);
            props.onPath(p);
          }}
        />
          </div>,
          document.body,
        )}
    </>
  );
}
