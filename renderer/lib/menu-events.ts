/**
 * Commands from the Electron app menu (main/app/menu.ts), which arrive as a `vivarium:menu` DOM
 * event. The listener is registered when this module loads, because the app may send a command as
 * soon as a window finishes loading, before any component has mounted: such commands wait here until
 * a handler subscribes. In a browser nothing ever sends them.
 */
import { isMenuAction, MENU_EVENT, type MenuAction } from '../../main/common/menu-actions';

type Handler = (action: MenuAction) => boolean;

const handlers = new Set<Handler>();
const waiting: MenuAction[] = [];

function deliver(action: MenuAction): boolean {
  for (const h of [...handlers]) if (h(action)) return true;
  return false;
}

if (typeof window !== 'undefined') {
  window.addEventListener(MENU_EVENT, (e) => {
    const action = (e as CustomEvent<{ action?: unknown }>).detail?.action;
    if (!isMenuAction(action)) return;
    if (!deliver(action) && waiting.length < 8) waiting.push(action);
  });
}

/** Subscribes a handler; it returns true when it handled the action. Queued actions are offered first. */
export function onMenuAction(handler: Handler): () => void {
  handlers.add(handler);
  for (let i = 0; i < waiting.length; ) {
    if (handler(waiting[i]!)) waiting.splice(i, 1);
    else i++;
  }
  return () => void handlers.delete(handler);
}
