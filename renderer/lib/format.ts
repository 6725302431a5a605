/** Display formatting for sizes, counts and VM facts. Pure; locale-independent on purpose so the
 *  UI, the tests and screenshots agree. */
import type { VmConfig } from '../../main/common/models/vm-config';

const KIB = 1024;
const MIB = KIB * 1024;
const GIB = MIB * 1024;
const TIB = GIB * 1024;

/** Up to one decimal, without a trailing ".0". */
function oneDecimal(n: number): string {
  const r = Math.round(n * 10) / 10;
  return Number.isInteger(r) ? String(r) : r.toFixed(1);
}

/** 512 → "512 MiB", 1024 → "1 GiB", 1536 → "1.5 GiB". */
export function formatMemoryMiB(mib: number): string {
  if (!Number.isFinite(mib) || mib < 0) return '—';
  if (mib >= 1024 * 1024) return `${oneDecimal(mib / (1024 * 1024))} TiB`;
  if (mib >= 1024) return `${oneDecimal(mib / 1024)} GiB`;
  return `${oneDecimal(mib)} MiB`;
}

/** Bytes in binary units: "0 B", "512 B", "1.5 KiB", "20 GiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes >= TIB) return `${oneDecimal(bytes / TIB)} TiB`;
  if (bytes >= GIB) return `${oneDecimal(bytes / GIB)} GiB`;
  if (bytes >= MIB) return `${oneDecimal(bytes / MIB)} MiB`;
  if (bytes >= KIB) return `${oneDecimal(bytes / KIB)} KiB`;
  return `${Math.round(bytes)} B`;
}

export function formatCpus(cpus: number): string {
  return cpus === 1 ? '1 CPU' : `${cpus} CPUs`;
}

/** "Debian 12 · x86_64" — the OS label and guest architecture. */
export function formatOsArch(config: Pick<VmConfig, 'os' | 'arch'>): string {
  const os = config.os.trim() === '' ? 'Other' : config.os.trim();
  return `${os} · ${config.arch}`;
}

/** "2 CPUs · 2 GiB" */
export function formatResources(config: Pick<VmConfig, 'cpus' | 'memoryMiB'>): string {
  return `${formatCpus(config.cpus)} · ${formatMemoryMiB(config.memoryMiB)}`;
}

/** A file name for a screenshot download: the VM name made safe, plus a sortable local time. */
export function screenshotFileName(vmName: string, at: Date): string {
  const safe = vmName.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '') || 'vm';
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${at.getFullYear()}${p(at.getMonth() + 1)}${p(at.getDate())}-${p(at.getHours())}${p(at.getMinutes())}${p(at.getSeconds())}`;
  return `${safe}-${stamp}.png`;
}

/** Decodes base64 (as `vms.screenshot` returns it) to bytes. */
export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
