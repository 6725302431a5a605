/** Labelled form controls with their hint and error wired up for assistive technology. */
import { useId, type ReactNode, type InputHTMLAttributes } from 'react';

interface FieldShellProps {
  readonly label: string;
  readonly error?: string | undefined;
  readonly hint?: string | undefined;
  readonly className?: string;
  readonly children: (ids: { id: string; describedBy: string | undefined; invalid: boolean }) => ReactNode;
}

function FieldShell({ label, error, hint, className, children }: FieldShellProps): ReactNode {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [error ? errorId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field ${error ? 'field-invalid' : ''} ${className ?? ''}`}>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {children({ id, describedBy, invalid: Boolean(error) })}
      {hint && (
        <p id={hintId} className="field-hint">
          {hint}
        </p>
      )}
      {error && (
        <p id={errorId} className="field-error">
          {error}
        </p>
      )}
    </div>
  );
}

type TextInputProps = Omit<InputHTMLAttributes<HTMLInputElement>, 'value' | 'onChange' | 'id'> & {
  readonly label: string;
  readonly value: string;
  readonly onValue: (v: string) => void;
  readonly error?: string | undefined;
  readonly hint?: string | undefined;
  readonly fieldClassName?: string;
};

export function TextField({ label, value, onValue, error, hint, fieldClassName, ...rest }: TextInputProps): ReactNode {
  return (
    <FieldShell label={label} error={error} hint={hint} className={fieldClassName}>
      {({ id, describedBy, invalid }) => (
        <input
          {...rest}
          id={id}
          className="input"
          value={value}
          onChange={(e) => onValue(e.target.value)}
          aria-invalid={invalid || undefined}
          aria-describedby={describedBy}
          spellCheck={false}
          autoComplete="off"
        />
      )}
    </FieldShell>
  );
}

export interface SelectOption<T extends string> {
  readonly value: T;
  readonly label: string;
}

export function SelectField<T extends string>(props: {
  readonly label: string;
  readonly value: T;
  readonly options: readonly SelectOption<T>[];
  readonly onValue: (v: T) => void;
  readonly disabled?: boolean;
  readonly hint?: string;
  readonly error?: string | undefined;
  readonly fieldClassName?: string;
}): ReactNode {
  return (
    <FieldShell label={props.label} hint={props.hint} error={props.error} className={props.fieldClassName}>
      {({ id, describedBy, invalid }) => (
        <select
          id={id}
          className="input select"
          value={props.value}
          disabled={props.disabled}
          aria-describedby={describedBy}
          aria-invalid={invalid || undefined}
          onChange={(e) => {
            const found = props.options.find((o) => o.value === e.target.value);
            if (found) props.onValue(found.value);
          }}
        >
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    </FieldShell>
  );
}

export function CheckboxField(props: {
  readonly label: string;
  readonly checked: boolean;
  readonly onChecked: (v: boolean) => void;
  readonly disabled?: boolean;
  readonly hint?: string;
}): ReactNode {
  const id = useId();
  return (
    <div className="field field-check">
      <input
        id={id}
        type="checkbox"
        className="checkbox"
        checked={props.checked}
        disabled={props.disabled}
        aria-describedby={props.hint ? `${id}-hint` : undefined}
        onChange={(e) => props.onChecked(e.target.checked)}
      />
      <label htmlFor={id}>{props.label}</label>
      {props.hint && (
        <p id={`${id}-hint`} className="field-hint">
          {props.hint}
        </p>
      )}
    </div>
  );
}

/** Radio buttons in a fieldset whose legend names the group. */
export function RadioGroup<T extends string>(props: {
  readonly legend: string;
  readonly value: T;
  readonly options: readonly SelectOption<T>[];
  readonly onValue: (v: T) => void;
  readonly disabled?: boolean;
}): ReactNode {
  const name = useId();
  return (
    <fieldset className="radio-group" disabled={props.disabled}>
      <legend className="field-label">{props.legend}</legend>
      <div className="radio-row">
        {props.options.map((o) => (
          <label key={o.value} className="radio">
            <input type="radio" name={name} value={o.value} checked={props.value === o.value} onChange={() => props.onValue(o.value)} />
            {o.label}
          </label>
        ))}
      </div>
    </fieldset>
  );
}

/** A sentence from the engine, announced when it appears. */
export function FormError({ message }: { readonly message: string | null | undefined }): ReactNode {
  if (!message) return null;
  return (
    <p className="form-error" role="alert">
      {message}
    </p>
  );
}
