/**
 * A context menu (right-click, the Menu key or Shift+F10), keyboard-navigable as the WAI-ARIA menu
 * pattern describes: it opens with the first usable item focused; Up/Down move (wrapping), Home/End
 * go to the ends, a letter goes to the next item starting with it, Enter or Space choose, Escape
 * closes and focus goes back to where it was. Tab, a click elsewhere, scrolling or resizing the
 * window close it too. Disabled items stay in the list (focusable, `aria-disabled`) so a person can
 * learn the menu, but do nothing.
 *
 * Mounted = open; the parent unmounts it to close. Rendered into <body> so no ancestor clips it.
 */
import { Fragment, useEffect, useLayoutEffect, useRef, type KeyboardEvent, type ReactNode } from 'react';
import { createPortal } from 'react-dom';

export interface ContextMenuItem<K extends string> {
  readonly key: K;
  readonly label: string;
  readonly disabled?: boolean;
  /** Why a disabled item cannot be chosen now: its tooltip and accessible description. */
  readonly reason?: string | null;
  /** A destructive action, drawn in the danger colour. */
  readonly danger?: boolean;
  /** A line above this item, to group items. */
  readonly separatorBefore?: boolean;
  /** The keyboard shortcut that does the same outside the menu ("Enter", "Delete"): shown, and
   *  given to assistive technology as `aria-keyshortcuts`. */
  readonly shortcut?: string;
}

/** Where the menu opens, in viewport (client) pixels: its top-left corner, moved in to fit. */
export interface MenuPoint {
  readonly x: number;
  readonly y: number;
}

/** Keeps a box of `size` placed at `at` inside a viewport of `view`, `margin` px from its edges:
 *  a menu near the right or bottom edge opens to the left of / above the point instead. */
export function fitMenu(at: MenuPoint, size: { readonly width: number; readonly height: number }, view: { readonly width: number; readonly height: number }, margin = 4): MenuPoint {
  const x = at.x + size.width + margin > view.width ? at.x - size.width : at.x;
  const y = at.y + size.height + margin > view.height ? at.y - size.height : at.y;
  return {
    x: Math.max(margin, Math.min(x, view.width - size.width - margin)),
    y: Math.max(margin, Math.min(y, view.height - size.height - margin)),
  };
}

export function ContextMenu<K extends string>(props: {
  /** The menu's accessible name ("Actions for web"). */
  readonly label: string;
  readonly items: readonly ContextMenuItem<K>[];
  readonly at: MenuPoint;
  /** An enabled item was chosen: the menu is to close and the action to run. */
  readonly onSelect: (key: K) => void;
  readonly onClose: () => void;
}): ReactNode {
  const { items, at } = props;
  const ref = useRef<HTMLDivElement>(null);
  const onCloseRef = useRef(props.onClose);
  onCloseRef.current = props.onClose;

  // Placed inside the window, first usable item focused; focus goes back to the opener afterwards.
  useLayoutEffect(() => {
    const menu = ref.current;
    if (!menu) return;
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const p = fitMenu(at, { width: menu.offsetWidth, height: menu.offsetHeight }, { width: window.innerWidth, height: window.innerHeight });
    menu.style.left = `${p.x}px`;
    menu.style.top = `${p.y}px`;
    const all = menuItems(menu);
    (all.find((el) => el.getAttribute('aria-disabled') !== 'true') ?? all[0])?.focus();
    return () => {
      // Unless the choice moved focus elsewhere (a dialog it opened), back to the opener.
      const active = document.activeElement;
      if (previous?.isConnected && (active === null || active === document.body || menu.contains(active))) previous.focus();
    };
  }, [at]);

  // Anything outside the menu closes it.
  useEffect(() => {
    const close = (): void => onCloseRef.current();
    const onPointerDown = (e: PointerEvent): void => {
      if (!ref.current?.contains(e.target as Node)) close();
    };
    document.addEventListener('pointerdown', onPointerDown, true);
    window.addEventListener('blur', close);
    window.addEventListener('resize', close);
    document.addEventListener('scroll', close, true);
    return () => {
      document.removeEventListener('pointerdown', onPointerDown, true);
      window.removeEventListener('blur', close);
      window.removeEventListener('resize', close);
      document.removeEventListener('scroll', close, true);
    };
  }, []);

  const choose = (item: ContextMenuItem<K>): void => {
    if (!item.disabled) props.onSelect(item.key);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>): void => {
    const menu = ref.current;
    if (!menu) return;
    const all = menuItems(menu);
    const i = all.indexOf(document.activeElement as HTMLElement);
    const focus = (n: number): void => all[(n + all.length) % all.length]?.focus();
    switch (e.key) {
      case 'ArrowDown':
        e.preventDefault();
        focus(i + 1);
        return;
      case 'ArrowUp':
        e.preventDefault();
        focus(i < 0 ? all.length - 1 : i - 1);
        return;
      case 'Home':
        e.preventDefault();
        focus(0);
        return;
      case 'End':
        e.preventDefault();
        focus(all.length - 1);
        return;
      case 'Enter':
      case ' ': {
        e.preventDefault();
        const item = items[i];
        if (item) choose(item);
        return;
      }
      case 'Escape':
        e.preventDefault();
        e.stopPropagation();
        props.onClose();
        return;
      case 'Tab':
        e.preventDefault();
        props.onClose();
        return;
      case 'ContextMenu':
        e.preventDefault();
        return;
      default:
        // A letter moves to the next item whose label starts with it.
        if (e.key.length === 1 && !e.ctrlKey && !e.altKey && !e.metaKey && e.key.trim() !== '') {
          const letter = e.key.toLowerCase();
          for (let step = 1; step <= items.length; step++) {
            const n = (i + step) % items.length;
            if (items[n]?.label.toLowerCase().startsWith(letter)) {
              e.preventDefault();
              focus(n);
              return;
            }
          }
        }
    }
  };

  return createPortal(
    <div
      ref={ref}
      role="menu"
      aria-label={props.label}
      aria-orientation="vertical"
      className="context-menu"
      onKeyDown={onKeyDown}
      // The browser's own menu never opens over ours.
      onContextMenu={(e) => {
        e.preventDefault();
        e.stopPropagation();
      }}
    >
      {items.map((item) => (
        <Fragment key={item.key}>
          {item.separatorBefore && <div role="separator" className="context-menu-separator" />}
          <div
            role="menuitem"
            tabIndex={-1}
            aria-disabled={item.disabled || undefined}
            title={(item.disabled && item.reason) || undefined}
            aria-keyshortcuts={item.shortcut}
            className={`context-menu-item ${item.danger ? 'context-menu-danger' : ''}`}
            onClick={() => choose(item)}
            onPointerMove={(e) => e.currentTarget.focus()}
          >
            <span>{item.label}</span>
            {item.shortcut && <span className="context-menu-shortcut">{item.shortcut}</span>}
          </div>
        </Fragment>
      ))}
    </div>,
    document.body,
  );
}

function menuItems(menu: HTMLElement): HTMLElement[] {
  return Array.from(menu.querySelectorAll<HTMLElement>('[role="menuitem"]'));
}
