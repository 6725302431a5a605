/**
 * The first run that guides (issue 12): when the engine finds no QEMU, a screen — not an error —
 * with the exact install command for this OS (from `host.doctor()`'s `setup`), a Copy button and
 * "Check again". When QEMU is there but the hardware accelerator is held back by something the
 * user can fix (the kvm group on Linux, the HVF entitlement on macOS), a banner says what to do.
 *
 * The app shows at once; the check runs beside it, so a machine with QEMU never waits for it.
 */
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { qemuDirAdvice, type HostReport } from '../../main/common/models/host-report';
import { useServices } from '../engine';
import { errorMessage } from '../lib/errors';

type Check =
  | { readonly kind: 'checking'; readonly last: HostReport | null }
  | { readonly kind: 'done'; readonly report: HostReport; readonly checkedAt: number }
  | { readonly kind: 'failed'; readonly message: string };

const DISMISS_KEY = 'vivarium.setup.dismissed';

function dismissedKey(): string | null {
  try {
    return localStorage.getItem(DISMISS_KEY);
  } catch {
    return null;
  }
}

/** Shows the install guide instead of `children` while QEMU is missing. */
export function FirstRunGate({ children }: { readonly children: ReactNode }): ReactNode {
  const services = useServices();
  const [check, setCheck] = useState<Check>({ kind: 'checking', last: null });
  const [dismissed, setDismissed] = useState<string | null>(dismissedKey);

  const run = useCallback(() => {
    let cancelled = false;
    setCheck((c) => ({ kind: 'checking', last: c.kind === 'done' ? c.report : c.kind === 'checking' ? c.last : null }));
    services.host.doctor().then(
      (report) => !cancelled && setCheck({ kind: 'done', report, checkedAt: Date.now() }),
      (e: unknown) => !cancelled && setCheck({ kind: 'failed', message: errorMessage(e) }),
    );
    return () => {
      cancelled = true;
    };
  }, [services]);

  useEffect(() => run(), [run]);

  const report = check.kind === 'done' ? check.report : check.kind === 'checking' ? check.last : null;
  if (report && !report.setup.qemuFound) {
    return <InstallQemu report={report} checking={check.kind === 'checking'} checkedAt={check.kind === 'done' ? check.checkedAt : null} onCheckAgain={run} />;
  }
  const fix = report ? accelFix(report) : null;
  const showFix = fix !== null && dismissed !== fix.key;
  return (
    <>
      {showFix && (
        <div className="banner banner-warning" role="status" aria-label="Hardware acceleration">
          <span>
            {fix.text}
            {fix.command && (
              <>
                {' '}
                <code id="fix-command" aria-label="Fix command">{fix.command}</code>
              </>
            )}
          </span>
          {fix.command && <CopyButton text={fix.command} selectId="fix-command" />}
          <button
            type="button"
            className="btn btn-small btn-ghost"
            onClick={() => {
              try {
                localStorage.setItem(DISMISS_KEY, fix.key);
              } catch {
                // private mode: dismissed for this page only
              }
              setDismissed(fix.key);
            }}
          >
            Dismiss
          </button>
        </div>
      )}
      {children}
    </>
  );
}

function accelFix(report: HostReport): { readonly key: string; readonly text: string; readonly command: string | null } | null {
  const { kvmPermission, hvf } = report.setup;
  if (kvmPermission) return { key: `kvm:${kvmPermission.command}`, text: kvmPermission.explanation, command: kvmPermission.command };
  if (hvf) return { key: `hvf:${hvf.explanation}`, text: hvf.explanation, command: null };
  return null;
}

const OS_NAMES: Readonly<Record<string, string>> = {
  brew: 'macOS (Homebrew)',
  apt: 'Debian and Ubuntu',
  dnf: 'Fedora and RHEL',
  pacman: 'Arch Linux',
  zypper: 'openSUSE',
};

function InstallQemu(props: {
  readonly report: HostReport;
  readonly checking: boolean;
  readonly checkedAt: number | null;
  readonly onCheckAgain: () => void;
}): ReactNode {
  const { report, checking, checkedAt, onCheckAgain } = props;
  const { setup } = report;
  const [checks, setChecks] = useState(0);

  useEffect(() => {
    document.title = 'Install QEMU — Vivarium';
  }, []);

  return (
    <main className="center-page">
      <section className="notice" aria-labelledby="first-run-title" data-testid="first-run">
        <h1 id="first-run-title" className="notice-title">
          Install QEMU to get started
        </h1>
        {setup.qemuDir ? (
          <p data-testid="qemu-dir-advice">Vivarium runs virtual machines with QEMU. {qemuDirAdvice(setup.qemuDir)}</p>
        ) : (
          <p>Vivarium runs virtual machines with QEMU, and QEMU is not installed on this computer.</p>
        )}
        {setup.installCommand ? (
          <>
            <p>
              {setup.qemuDir ? 'If this computer has no QEMU at all, ' : ''}
              {setup.packageManager === 'brew' ? (
                <>
                  {setup.qemuDir ? 'in' : 'In'} Terminal, with{' '}
                  <a href="https://brew.sh" target="_blank" rel="noreferrer">
                    Homebrew
                  </a>
                  , run:
                </>
              ) : (
                <>{setup.qemuDir ? 'open' : 'Open'} a terminal and run{setup.packageManager ? ` (${OS_NAMES[setup.packageManager] ?? setup.packageManager})` : ''}:</>
              )}
            </p>
            <pre>
              <code id="install-command" aria-label="Install command">{setup.installCommand}</code>
            </pre>
            <CopyButton text={setup.installCommand} selectId="install-command" />
          </>
        ) : (
          <p>
            Install QEMU (<code>qemu-system-{report.hostArch}</code> and <code>qemu-img</code>) and UEFI firmware (OVMF or edk2) with your
            system’s package manager.
            {report.os === 'win32' ? ' On Windows, run Vivarium inside WSL2 or connect to a Linux or macOS machine.' : ''}
          </p>
        )}
        {setup.kvmPermission && (
          <p>
            {setup.kvmPermission.explanation} <code aria-label="KVM fix command">{setup.kvmPermission.command}</code>
          </p>
        )}
        <p className="muted">When it is installed, check again: Vivarium finds it without a restart.</p>
        <button
          type="button"
          className="btn btn-primary"
          disabled={checking}
          onClick={() => {
            setChecks((n) => n + 1);
            onCheckAgain();
          }}
        >
          {checking ? 'Checking…' : 'Check again'}
        </button>
        <p role="status" className="muted">
          {checks > 0 && !checking && checkedAt !== null ? `Still not found (checked at ${new Date(checkedAt).toLocaleTimeString()}).` : ''}
        </p>
        {report.problems.length > 0 && (
          <details>
            <summary>Details</summary>
            <ul>
              {report.problems.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          </details>
        )}
      </section>
    </main>
  );
}

/** Selects the text of element `id` (so Ctrl+C / Cmd+C copies it). */
function selectText(id: string): void {
  const el = document.getElementById(id);
  const sel = window.getSelection();
  if (el && sel) sel.selectAllChildren(el);
}

/** Copies `text` to the clipboard and says so. Where there is no clipboard API (a page served over
 *  plain http on a LAN address is not a secure context: navigator.clipboard is undefined) or it
 *  refuses, selects the text of element `selectId` and says to copy it by hand. */
export function CopyButton({ text, selectId }: { readonly text: string; readonly selectId: string }): ReactNode {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const t = setTimeout(() => setState('idle'), 2500);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <button
      type="button"
      className="btn btn-small"
      onClick={() => {
        const failed = () => {
          selectText(selectId);
          setState('failed');
        };
        // Typed as always there; undefined outside secure contexts.
        const clipboard = navigator.clipboard as Clipboard | undefined;
        if (!clipboard) return failed();
        clipboard.writeText(text).then(() => setState('copied'), failed);
      }}
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed: the text is selected, press Ctrl+C (⌘C on a Mac)' : 'Copy'}
    </button>
  );
}
