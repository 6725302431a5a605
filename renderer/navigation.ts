/** Moving between the library and VM windows. */
import { routeHash, routeUrl } from './lib/router';

export function isElectron(): boolean {
  return navigator.userAgent.includes('Electron/');
}

/**
 * Opens a VM's window. Electron's main process turns this window.open into a BrowserWindow of its
 * own (and returns null here); a browser opens a tab, reusing the VM's tab when it is already open.
 * If a browser blocks the pop-up, show the VM in this tab rather than doing nothing.
 */
export function openVmWindow(id: string): void {
  const url = routeUrl(window.location.href, { kind: 'vm', id });
  const opened = window.open(url, `vivarium-vm-${id}`);
  if (!opened && !isElectron()) window.location.hash = routeHash({ kind: 'vm', id });
}

/** The host's resources and virtualization facts, in this window. */
export function goToHost(): void {
  window.location.hash = routeHash({ kind: 'host' });
}

export function goToLibrary(): void {
  window.location.hash = routeHash({ kind: 'library' });
}

/** After a VM is deleted from its own window: close it (Electron, or a tab the library opened),
 *  else go back to the library. */
export function leaveVmWindow(): void {
  if (isElectron() || window.opener) {
    window.close();
    // window.close() is ignored for tabs the user opened; fall through in that case.
  }
  goToLibrary();
}
