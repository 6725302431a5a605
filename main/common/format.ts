/**
 * Units for resource figures, shared by the CLI and the renderer's graphs. Pure and
 * locale-independent on purpose, so the UI, the CLI, the tests and screenshots agree.
 * `null` (a figure the host or guest can't provide) and nonsense (NaN, negative) print as `unknown`
 * ("—" unless told otherwise), never as zero.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;
export const UNKNOWN = '—';

/** Up to one decimal, without a trailing ".0": 1.5, 20, 0.3. */
function oneDecimal(n: number): string {
  const r = Math.round(n * 10) / 10;
  return Number.isInteger(r) ? String(r) : r.toFixed(1);
}

function usable(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** Binary units: 0 → "0 B", 1536 → "1.5 KiB", 20 GiB → "20 GiB". */
export function formatBytes(bytes: number | null | undefined, unknown = UNKNOWN): string {
  if (!usable(bytes)) return unknown;
  let i = 0;
  let n = bytes;
  while (n >= 1024 && i < BYTE_UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  // 1023.97 KiB would round to "1024 KiB": say "1 MiB" instead.
  if (i > 0 && Math.round(n * 10) / 10 >= 1024 && i < BYTE_UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${oneDecimal(n)} ${BYTE_UNITS[i]}`;
}

/** A throughput: 1572864 → "1.5 MiB/s". */
export function formatRate(bytesPerSecond: number | null | undefined, unknown = UNKNOWN): string {
  return usable(bytesPerSecond) ? `${formatBytes(bytesPerSecond)}/s` : unknown;
}

/** A percentage with a fixed number of decimals (steady width in a live view): 12.345 → "12.3%". */
export function formatPercent(percent: number | null | undefined, decimals = 1, unknown = UNKNOWN): string {
  return usable(percent) ? `${percent.toFixed(decimals)}%` : unknown;
}

/** Operations per second: 12 → "12 IOPS", 12345 → "12.3k IOPS". */
export function formatIops(opsPerSecond: number | null | undefined, unknown = UNKNOWN): string {
  if (!usable(opsPerSecond)) return unknown;
  if (opsPerSecond >= 999_950) return `${oneDecimal(opsPerSecond / 1_000_000)}M IOPS`;
  if (opsPerSecond >= 9_999.5) return `${oneDecimal(opsPerSecond / 1000)}k IOPS`;
  return `${Math.round(opsPerSecond)} IOPS`;
}
