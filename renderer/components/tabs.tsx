/** An ARIA tablist with automatic activation: arrows, Home and End move between tabs. Panels stay
 *  mounted (hidden when inactive) so a console keeps its connection and scrollback. */
import { useId, useRef, type KeyboardEvent, type ReactNode } from 'react';

export interface TabSpec<K extends string> {
  readonly key: K;
  readonly label: string;
  readonly icon?: ReactNode;
  readonly panel: ReactNode;
}

export function Tabs<K extends string>(props: {
  readonly label: string;
  readonly tabs: readonly TabSpec<K>[];
  readonly active: K;
  /** `by` says how: a pointer click may move focus into the panel; the keyboard keeps it on the tab. */
  readonly onActive: (k: K, by: 'pointer' | 'keyboard') => void;
  readonly className?: string;
}): ReactNode {
  const base = useId();
  const refs = useRef(new Map<K, HTMLButtonElement>());
  const keys = props.tabs.map((t) => t.key);

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>): void => {
    const i = keys.indexOf(props.active);
    let next: number | null = null;
    if (e.key === 'ArrowRight') next = (i + 1) % keys.length;
    else if (e.key === 'ArrowLeft') next = (i - 1 + keys.length) % keys.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = keys.length - 1;
    if (next === null) return;
    e.preventDefault();
    const k = keys[next];
    if (k === undefined) return;
    props.onActive(k, 'keyboard');
    refs.current.get(k)?.focus();
  };

  return (
    <div className={`tabs ${props.className ?? ''}`}>
      <div role="tablist" aria-label={props.label} className="tablist" onKeyDown={onKeyDown}>
        {props.tabs.map((t) => {
          const selected = t.key === props.active;
          return (
            <button
              key={t.key}
              ref={(el) => {
                if (el) refs.current.set(t.key, el);
                else refs.current.delete(t.key);
              }}
              type="button"
              role="tab"
              id={`${base}-tab-${t.key}`}
              aria-selected={selected}
              aria-controls={`${base}-panel-${t.key}`}
              tabIndex={selected ? 0 : -1}
              className="tab"
              onClick={(e) => props.onActive(t.key, e.detail === 0 ? 'keyboard' : 'pointer')}
            >
              {t.icon}
              {t.label}
            </button>
          );
        })}
      </div>
      {props.tabs.map((t) => (
        <div
          key={t.key}
          role="tabpanel"
          id={`${base}-panel-${t.key}`}
          aria-labelledby={`${base}-tab-${t.key}`}
          hidden={t.key !== props.active}
          className="tabpanel"
        >
          {t.panel}
        </div>
      ))}
    </div>
  );
}
