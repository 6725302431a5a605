/**
 * A modal dialog on the native <dialog>: showModal() makes the rest of the page inert, Escape
 * closes it, and Tab is kept inside it (the native element lets Tab escape to the browser chrome).
 * Mounted = open; the parent unmounts it to close. Focus returns to where it was.
 *
 * Dialogs stack (a file chooser over the New VM wizard, a confirmation over Settings): Escape and
 * Tab belong to the topmost one only. React bubbles synthetic events through portals to the React
 * parent, so each handler first checks that the event is its own dialog's (`ownsEvent`).
 */
import { useEffect, useId, useLayoutEffect, useRef, type KeyboardEvent, type ReactNode } from 'react';

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/** Whether an event from `target` belongs to `dialog` rather than to a dialog opened over it
 *  (nested in the DOM, or in a portal whose React parent is inside `dialog`). */
export function ownsEvent(dialog: HTMLDialogElement | null, target: EventTarget | null): boolean {
  if (!dialog || !(target instanceof Element)) return false;
  return target.closest('dialog') === dialog;
}

export interface DialogProps {
  readonly title: string;
  readonly onClose: () => void;
  readonly children: ReactNode;
  readonly className?: string;
  /** Described by this element id (a short explanation under the title). */
  readonly describedBy?: string;
  /** `alertdialog` for confirmations of destructive actions. */
  readonly role?: 'dialog' | 'alertdialog';
}

export function Dialog({ title, onClose, children, className, describedBy, role = 'dialog' }: DialogProps): ReactNode {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const onCloseRef = useRef(onClose);
  useEffect(() => {
    onCloseRef.current = onClose;
  }, [onClose]);

  useLayoutEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    dialog.showModal();
    // An element marked data-autofocus (Cancel, in confirmations), else the first field, else the
    // first button: what the user most likely wants to act on.
    const first =
      dialog.querySelector<HTMLElement>('[data-autofocus]') ??
      dialog.querySelector<HTMLElement>('input:not([disabled]), select:not([disabled]), textarea:not([disabled])') ??
      dialog.querySelector<HTMLElement>(FOCUSABLE);
    first?.focus();
    // When the browser closes it (a second Escape without user activation skips `cancel`).
    const onNativeClose = (): void => onCloseRef.current();
    dialog.addEventListener('close', onNativeClose);
    return () => {
      dialog.removeEventListener('close', onNativeClose);
      if (dialog.open) dialog.close();
      if (previous?.isConnected) previous.focus();
    };
  }, []);

  const onKeyDown = (e: KeyboardEvent<HTMLDialogElement>): void => {
    if (e.key !== 'Tab' || !ref.current || !ownsEvent(ref.current, e.target)) return;
    const items = Array.from(ref.current.querySelectorAll<HTMLElement>(FOCUSABLE)).filter((el) => el.offsetParent !== null || el === document.activeElement);
    if (items.length === 0) return;
    const first = items[0]!;
    const last = items[items.length - 1]!;
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };

  return (
    <dialog
      ref={ref}
      className={`dialog ${className ?? ''}`}
      role={role === 'alertdialog' ? 'alertdialog' : undefined}
      aria-labelledby={titleId}
      aria-describedby={describedBy}
      aria-modal="true"
      onCancel={(e) => {
        // A dialog over this one was cancelled: it closes itself; this one stays.
        if (!ownsEvent(ref.current, e.target)) return;
        e.preventDefault();
        onClose();
      }}
      onKeyDown={onKeyDown}
    >
      <h2 id={titleId} className="dialog-title">
        {title}
      </h2>
      {children}
    </dialog>
  );
}
