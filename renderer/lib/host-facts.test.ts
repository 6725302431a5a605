import { describe, expect, it } from 'vitest';
import { problemsBesideReasons } from './host-facts';

// What `vivarium doctor --json` says on a host whose /dev/kvm is kvm_pvm (this CI machine).
const KVM_REASON =
  '/dev/kvm is provided by kvm_pvm (a nested, paravirtual KVM) under which stock guests and UEFI firmware hang, so Vivarium uses TCG; choose the kvm accelerator explicitly to try it anyway.';
const PROBLEM = `x86_64 guests will run with TCG software emulation, which is much slower. ${KVM_REASON}`;

describe('problemsBesideReasons', () => {
  it('says the KVM sentence once: the problem keeps only what it adds to the reason shown', () => {
    expect(problemsBesideReasons([PROBLEM], [KVM_REASON, 'software emulation: works everywhere, slower'])).toEqual([
      'x86_64 guests will run with TCG software emulation, which is much slower.',
    ]);
  });
  it('keeps problems that repeat nothing, drops those that are only a reason, and duplicates', () => {
    expect(problemsBesideReasons(['qemu-img is missing.', KVM_REASON, 'qemu-img is missing.'], [KVM_REASON])).toEqual(['qemu-img is missing.']);
    expect(problemsBesideReasons([PROBLEM], [])).toEqual([PROBLEM]);
    expect(problemsBesideReasons([PROBLEM], ['  '])).toEqual([PROBLEM]);
  });
});
