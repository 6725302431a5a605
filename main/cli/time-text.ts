/**
 * Times in the CLI's text output, as `ls -l` and VMware's snapshot list show them: the host's local
 * time, to the minute ("2026-12-01 14:03"), or to the second where a log is read beside it. `--json`
 * keeps the ISO 8601 UTC strings as the engine gives them (README); this is for people only.
 */

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * `iso` (an ISO 8601 time, e.g. "2026-12-01T13:03:27.123Z") as local "YYYY-MM-DD HH:MM", with
 * ":SS" when `seconds`. Text that is no time is returned as it is (never "Invalid Date").
 */
export function localTime(iso: string, opts: { readonly seconds?: boolean } = {}): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}${opts.seconds ? `:${pad(d.getSeconds())}` : ''}`;
  return `${day} ${time}`;
}
