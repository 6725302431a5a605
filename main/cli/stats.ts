/** `vivarium stats [NAME] [--json] [--watch]`. */
import type { Services } from '../common/contract';
import type { StatsSample } from '../common/models/stats';
import type { CliIo } from './index';

export async function runStats(s: Services, opts: { vm?: string; json: boolean; watch: boolean }, io: CliIo): Promise<number> {
  const print = (sample: StatsSample) =>
    io.stdout.write(opts.json ? `${JSON.stringify(publicSample(sample))}\n` : `${formatSample(sample)}\n`);
  print(await s.stats.sample({ vm: opts.vm }));
  if (!opts.watch) return 0;
  for (;;) print(await s.stats.sample({ vm: opts.vm }));
}

/** The documented JSON shape (README): host figures and running VMs, null where unknown. */
export function publicSample(x: StatsSample): unknown {
  const h = x.host;
  return {
    host: {
      cpuPercent: h.cpuPercent,
      memTotalBytes: h.memTotalBytes,
      memUsedBytes: h.memUsedBytes,
      diskReadBps: h.diskReadBps,
      diskWriteBps: h.diskWriteBps,
      netRxBps: h.netRxBps,
      netTxBps: h.netTxBps,
    },
    vms: x.vms.map((v) => ({
      name: v.name,
      id: v.id,
      cpuPercent: v.cpuPercent,
      rssBytes: v.rssBytes,
      diskReadBps: v.diskReadBps,
      diskWriteBps: v.diskWriteBps,
      netRxBps: v.netRxBps,
      netTxBps: v.netTxBps,
    })),
  };
}

const pct = (v: number | null) => (v === null ? '   n/a' : `${v.toFixed(1).padStart(5)}%`);
const bytes = (v: number | null) => {
  if (v === null) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let n = v;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};

function formatSample(x: StatsSample): string {
  const h = x.host;
  const lines = [
    `host  cpu ${pct(h.cpuPercent)}  mem ${bytes(h.memUsedBytes)}/${bytes(h.memTotalBytes)}  disk r ${bytes(h.diskReadBps)}/s w ${bytes(h.diskWriteBps)}/s  net rx ${bytes(h.netRxBps)}/s tx ${bytes(h.netTxBps)}/s`,
  ];
  for (const v of x.vms) {
    lines.push(
      `${v.name.padEnd(16)} cpu ${pct(v.cpuPercent)}  rss ${bytes(v.rssBytes)}  disk r ${bytes(v.diskReadBps)}/s w ${bytes(v.diskWriteBps)}/s  net ${v.netRxBps === null ? 'n/a (needs guest agent)' : `rx ${bytes(v.netRxBps)}/s tx ${bytes(v.netTxBps)}/s`}`,
    );
  }
  return lines.join('\n');
}
