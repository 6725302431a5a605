/** Keyboard rules: the display's release combo and arrow-key movement in the library grid. */

export interface KeyLike {
  readonly key: string;
  readonly code: string;
  readonly ctrlKey: boolean;
  readonly altKey: boolean;
  readonly metaKey: boolean;
  readonly shiftKey: boolean;
}

/** The human-readable release combo, shown next to the display (VMware's choice). */
export const RELEASE_COMBO_LABEL = 'Ctrl+Alt+G';

/** Ctrl+Alt+G releases keyboard and pointer from the guest display. `code` is checked first so the
 *  combo works on any keyboard layout; `key` covers synthetic events without a code. */
export function isReleaseCombo(e: KeyLike): boolean {
  if (!e.ctrlKey || !e.altKey || e.metaKey || e.shiftKey) return false;
  return e.code === 'KeyG' || e.key.toLowerCase() === 'g';
}

/**
 * Where focus goes in a grid of `count` items laid out `columns` wide (row-major, like CSS grid),
 * or null when the key does not move it. Movement stops at the edges rather than wrapping, as in
 * a file manager.
 */
export function gridMove(key: string, index: number, count: number, columns: number): number | null {
  if (count <= 0) return null;
  const cols = Math.max(1, Math.floor(columns));
  const clamp = (i: number): number => Math.min(count - 1, Math.max(0, i));
  switch (key) {
    case 'ArrowRight':
      return clamp(index + 1);
    case 'ArrowLeft':
      return clamp(index - 1);
    case 'ArrowDown':
      // Into a shorter last row: land on its last item, as file managers do.
      if (index + cols < count) return index + cols;
      return Math.floor(index / cols) < Math.floor((count - 1) / cols) ? count - 1 : index;
    case 'ArrowUp':
      return index - cols >= 0 ? index - cols : index;
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    case 'PageDown':
      return clamp(index + cols * 3);
    case 'PageUp':
      return clamp(index - cols * 3);
    default:
      return null;
  }
}
