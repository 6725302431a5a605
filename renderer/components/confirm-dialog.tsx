/**
 * A confirmation before an action that loses something (Force Off, Reset of a running guest): the
 * title asks, the text says what is lost. The confirming button has the focus, so Enter confirms;
 * Escape (or Cancel) closes without doing anything. An `alertdialog`, as the WAI-ARIA practices
 * describe for confirmations.
 */
import { useId, type ReactNode } from 'react';
import type { ActionConfirmation } from '../lib/vm-actions';
import { Dialog } from './dialog';

export function ConfirmDialog({
  confirmation,
  onConfirm,
  onClose,
}: {
  readonly confirmation: ActionConfirmation;
  /** Called once when the person confirms; the parent closes the dialog and acts. */
  readonly onConfirm: () => void;
  /** Cancel, Escape: nothing happens. */
  readonly onClose: () => void;
}): ReactNode {
  const descId = useId();
  return (
    <Dialog title={confirmation.title} onClose={onClose} role="alertdialog" describedBy={descId} className="dialog-narrow">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm();
        }}
      >
        <p id={descId} className="dialog-text">
          {confirmation.text}
        </p>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-danger" data-autofocus>
            {confirmation.confirmLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
