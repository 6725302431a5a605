import { describe, expect, it } from 'vitest';
import { ErrorCode, Remedy, SettingField, VivariumError, deserializeError, errors, serializeError } from '../../main/common/errors';
import { errorMessage } from './errors';
import { forVmState, uiError, uiRemedy, withoutCliText, withoutRequestPrefix, type UiRemedy } from './remedy';
import { z } from 'zod';
import { parseArgs } from '../../main/common/rpc/server';

function examples(): Remedy[] {
  const vm = 'web';
  const list: Remedy[] = [
    { kind: 'stop-vm', vm },
    { kind: 'force-stop', vm },
    { kind: 'start-vm', vm },
    { kind: 'lower', field: 'cpus', max: 1 },
    { kind: 'lower', field: 'cpus', max: 4, vm },
    { kind: 'lower', field: 'memoryMiB', max: 1536, vm },
    { kind: 'install', what: 'QEMU for aarch64 guests', packages: { debian: ['qemu-system-arm'], fedora: ['qemu-system-aarch64'], macos: ['qemu'] } },
    { kind: 'rename', taken: 'other' },
    { kind: 'use-id' },
    { kind: 'list-vms' },
    { kind: 'retry-later', afterSec: 2.5 },
    { kind: 'retry-later' },
    { kind: 'start-engine' },
    { kind: 'see-log', file: '/vms/web/qemu.log' },
    { kind: 'check-host' },
  ];
  for (const field of SettingField.options) {
    list.push({ kind: 'change-setting', field }, { kind: 'change-setting', field, to: null, vm });
  }
  list.push(
    { kind: 'change-setting', field: 'net', to: 'user' },
    { kind: 'change-setting', field: 'firmware', to: 'uefi' },
    { kind: 'change-setting', field: 'accel', to: 'auto' },
    { kind: 'change-setting', field: 'memoryMiB', to: '3072' },
  );
  return list;
}

describe('the UI words every remedy as a field message or a button, never a CLI command', () => {
  it('covers every remedy kind', () => {
    expect([...new Set(examples().map((r) => r.kind))].sort()).toEqual(Remedy.options.map((o) => o.shape.kind.value).sort());
  });

  it.each(['form', 'window'] as const)('in the %s: sentences without flags or commands', (place) => {
    for (const r of examples()) {
      const ui: UiRemedy = uiRemedy(r, place);
      expect(ui.text, JSON.stringify(r)).toMatch(/^[A-Z].*[.]$/);
      expect(ui.text).not.toMatch(/--|`|vivarium [a-z]|memoryMiB|diskSizeBytes/);
      if (ui.kind === 'action') expect(ui.label).not.toMatch(/--/);
    }
  });

  it('a settings remedy is a field message in a form, a Settings button elsewhere', () => {
    const r: Remedy = { kind: 'lower', field: 'memoryMiB', max: 4096, vm: 'web' };
    expect(uiRemedy(r, 'form')).toEqual({ kind: 'field', field: 'memory', text: 'Use 4 GiB or less.' });
    expect(uiRemedy(r, 'window')).toEqual({ kind: 'action', action: 'settings', label: 'Settings…', text: 'Use 4 GiB or less.' });
    expect(uiRemedy({ kind: 'change-setting', field: 'net', to: 'user' }, 'form')).toEqual({ kind: 'field', field: 'network', text: 'Turn Network on.' });
    expect(uiRemedy({ kind: 'stop-vm', vm: 'web' })).toEqual({ kind: 'action', action: 'shutdown', label: 'Shut Down', text: 'Shut the VM down first.' });
    expect(uiRemedy({ kind: 'force-stop', vm: 'web' })).toMatchObject({ kind: 'action', action: 'forceOff', label: 'Force Off' });
  });
});

describe('uiError', () => {
  it('puts each refused setting on its form field, after the error crossed a transport', () => {
    const wire = JSON.parse(
      JSON.stringify(
        new VivariumError(ErrorCode.InvalidArgument, 'Invalid VM settings: Memory must be at least 16 MiB; Port forwards need networking.', undefined, {
          field: 'memoryMiB',
          remedy: { kind: 'change-setting', field: 'memoryMiB' },
          fields: [
            { field: 'memoryMiB', message: 'Memory must be at least 16 MiB' },
            { field: 'forwards', message: 'Port forwards need networking', remedy: { kind: 'change-setting', field: 'net', to: 'user' } },
            { field: 'forwards.0.hostPort', message: 'Port forward 1: host port must be at most 65535' },
          ],
        }),
      ),
    ) as unknown;
    const e = uiError(deserializeError(wire), 'form');
    expect(e.fields).toEqual({ memory: 'Memory must be at least 16 MiB.', forwards: 'Port forwards need networking.' });
  });
  it('the network remedy lands on the Network field when the rule names it', () => {
    const e = uiError(new VivariumError(ErrorCode.InvalidArgument, 'x', undefined, { fields: [{ field: 'net', message: 'Network is off', remedy: { kind: 'change-setting', field: 'net', to: 'user' } }] }), 'form');
    expect(e.fields).toEqual({ network: 'Network is off. Turn Network on.' });
  });
  it('an engine sentence that still names a CLI command loses that part in the UI', () => {
    expect(withoutCliText('"web" is running. Shut it down first (vivarium stop web), then delete it.')).toBe('"web" is running. Shut it down first, then delete it.');
    expect(withoutCliText('The ISO /x.iso no longer exists. Put it back or change it: vivarium edit web --iso PATH.')).toBe('The ISO /x.iso no longer exists.');
    // A .vivarium file name is no command, and the dot in it ends no sentence.
    expect(withoutCliText('/home/me/porter.vivarium already exists. Choose another file name.')).toBe('/home/me/porter.vivarium already exists. Choose another file name.');
    expect(withoutCliText('No VM named "x". Run `vivarium list` to see your VMs.')).toBe('No VM named "x".');
    expect(withoutCliText('Only a CLI hint: `vivarium doctor`.')).toBe('Only a CLI hint: `vivarium doctor`.');
    // A download's certificate failure (main/services/media/request-failure.ts) names no command, so the UI shows it whole.
    const cert =
      "did not trust mirror.example for the file: its certificate is not signed by an authority this computer trusts (SELF_SIGNED_CERT_IN_CHAIN); if a proxy or a private mirror signs with its own authority, name that authority's certificate file (PEM) in NODE_EXTRA_CA_CERTS for the process that downloads: the command, or the app or server when one runs (restart it)";
    expect(withoutCliText(`The download of x.iso failed: ${cert}. Nothing was downloaded; run the same download again once that is fixed.`)).toContain(cert);
    expect(withoutCliText('"web" has no display (it was created with --display none). Use its serial console.')).toBe('"web" has no display. Use its serial console.');
    expect(errorMessage(errors.notFound('x'))).toBe('No VM named or with id "x".');
    expect(uiError(errors.mustStop('web', 'running', 'delete it')).remedy).toMatchObject({ action: 'shutdown' });
  });
  it('keeps only the first line of other errors, never a stack, and has a fallback', () => {
    expect(errorMessage(new Error('socket closed\n    at foo (bar.js:1:1)'))).toBe('socket closed');
    expect(errorMessage({ code: 'busy', message: 'Busy.' })).toBe('Busy.');
    expect(errorMessage('plain text')).toBe('plain text');
    expect(errorMessage(undefined)).toMatch(/^Something went wrong\./);
  });
});

describe('refusals of the engine request check read as sentences (no "Invalid request:")', () => {
  it('drops the lead and the field words before a sentence of its own', () => {
    expect(withoutRequestPrefix('Invalid request: Size bytes: a disk must be at least 1 MiB.')).toBe('A disk must be at least 1 MiB.');
    expect(withoutRequestPrefix('Invalid VM settings: Memory must be at least 16 MiB.')).toBe('Memory must be at least 16 MiB.');
    expect(withoutRequestPrefix('The VM is running.')).toBe('The VM is running.');
  });
  it('as the engine really words it (parseArgs) and uiError shows it', () => {
    const tuple = z.tuple([z.string(), z.object({ sizeBytes: z.number().int().min(1024 * 1024, 'a disk must be at least 1 MiB') })]);
    let thrown: unknown;
    try {
      parseArgs(tuple, ['vm', { sizeBytes: 1000 }], 'disks.add');
    } catch (e) {
      thrown = deserializeError(JSON.parse(JSON.stringify(serializeError(e))));
    }
    expect((thrown as Error).message).toMatch(/^Invalid request: /);
    expect(uiError(thrown).message).toBe('A disk must be at least 1 MiB.');
  });
});

describe("a suspended VM's force-stop remedy names Discard Saved State…", () => {
  const engine = (message: string) => new VivariumError(ErrorCode.InvalidState, message, undefined, { remedy: { kind: 'force-stop', vm: 'g1' } });
  it('in the sentence and as the button', () => {
    const e = forVmState(
      uiError(engine('"g1" is suspended: its disks must stay as they were until it resumes. Start it (it resumes where it was) and shut it down, or force it off to discard its saved state (the next start then boots afresh); then take a snapshot.')),
      'suspended',
    );
    expect(e.message).toContain('or discard its saved state (Discard Saved State…) (the next start then boots afresh)');
    expect(e.message).not.toMatch(/force it off|Force Off/);
    expect(e.remedy).toEqual({ kind: 'action', action: 'discard', label: 'Discard Saved State…', text: '' });
    expect(forVmState(uiError(engine('"g1" is suspended. Start it and shut it down, or discard its saved state with Force Off; then export it.')), 'suspended').message).toBe(
      '"g1" is suspended. Start it and shut it down, or discard its saved state (Discard Saved State…); then export it.',
    );
  });
  it('calls the start of a suspended VM Resume, as its button reads', () => {
    const e = new VivariumError(ErrorCode.InvalidState, '"g1" is suspended: a change to the memory size would keep it from resuming.', undefined, { remedy: { kind: 'start-vm', vm: 'g1' } });
    expect(forVmState(uiError(e), 'suspended').remedy).toEqual({ kind: 'action', action: 'start', label: 'Resume', text: 'Resume it first.' });
  });
  it('leaves a running VM’s Force Off alone', () => {
    const e = uiError(engine('"g1" does not respond. Force it off.'));
    expect(forVmState(e, 'running')).toBe(e);
    expect(e.remedy).toMatchObject({ action: 'forceOff', label: 'Force Off' });
  });
});
