/** What the Host view says about the host's accelerators, without saying anything twice. */

/**
 * The doctor's problems as the Host view lists them, under accelerators that already show their
 * reasons: a problem that repeats a shown reason word for word ("x86_64 guests will run with TCG
 * software emulation, which is much slower. /dev/kvm is provided by kvm_pvm …", whose second
 * sentence is KVM's reason, shown next to KVM) keeps only what it adds. A problem with nothing left
 * is dropped.
 */
export function problemsBesideReasons(problems: readonly string[], shownReasons: readonly string[]): readonly string[] {
  const reasons = shownReasons.map((r) => r.trim()).filter((r) => r.length > 0);
  const out: string[] = [];
  for (const problem of problems) {
    let rest = problem;
    for (const r of reasons) rest = rest.split(r).join(' ');
    rest = rest.replace(/\s+/g, ' ').trim();
    if (rest !== '' && !out.includes(rest)) out.push(rest);
  }
  return out;
}
