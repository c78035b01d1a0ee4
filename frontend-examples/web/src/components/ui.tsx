import type { ReactNode } from 'react';
import { formatMoney } from '../lib/format';

/** A labelled form field with its error next to it (`data-testid="error-<name>"`). */
export function Field({ label, name, error, children, hint }: { label: string; name: string; error?: string | null; children: ReactNode; hint?: ReactNode }) {
  return (
    <div className={`field${error ? ' has-error' : ''}`} data-field={name}>
      <label htmlFor={`f-${name}`}>{label}</label>
      {children}
      {hint && !error ? <small className="hint">{hint}</small> : null}
      {error ? (
        <small className="field-error" id={`f-${name}-error`} role="alert" data-testid={`error-${name}`}>
          {error}
        </small>
      ) : null}
    </div>
  );
}

export function FormError({ message, testId = 'form-error' }: { message?: string | null; testId?: string }) {
  return message ? (
    <p className="form-error" role="alert" data-testid={testId}>
      {message}
    </p>
  ) : null;
}

export function Money({ value }: { value: { amount: number; currency: string } | null | undefined }) {
  return <span className="money">{formatMoney(value)}</span>;
}

export function Status({ value, testId }: { value: string; testId?: string }) {
  return (
    <span className={`status status-${value.toLowerCase()}`} data-testid={testId}>
      {value}
    </span>
  );
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return <p className="muted" aria-busy="true">{label}</p>;
}
