/**
 * The app menu's commands as the page receives them: a DOM event `vivarium:menu` whose detail is
 * `{action}`, one word from this fixed list (main/app/menu.ts sends them; the renderer handles them).
 */
export const MENU_EVENT = 'vivarium:menu';

export const MENU_ACTIONS = ['new-vm', 'new-sandbox', 'start', 'pause', 'resume', 'restart', 'shutdown', 'force-off', 'suspend', 'ctrl-alt-del', 'screenshot', 'clone', 'export'] as const;
export type MenuAction = (typeof MENU_ACTIONS)[number];

export function isMenuAction(x: unknown): x is MenuAction {
  return typeof x === 'string' && (MENU_ACTIONS as readonly string[]).includes(x);
}
