// `npm run bench`: runs every benchmark and prints one table. Targets are ratios against a baseline
// measured in the same run wherever a baseline exists (these machines are noisy).
import { printTable } from './lib.mjs';

const suites = [
  ['engine', './engine.bench.mjs'],
  ['cli', './cli.bench.mjs'],
  ['app', './app.bench.mjs'],
  ['stats', './stats.bench.mjs'],
  ['install', './install.bench.mjs'],
  ['snapshots', './snapshots.bench.mjs'],
  ['sandbox', './sandbox.bench.mjs'],
];
const only = process.argv[2];
const rows = [];
for (const [name, mod] of suites) {
  if (only && only !== name) continue;
  try {
    const { run } = await import(mod);
    rows.push(...(await run()));
  } catch (e) {
    rows.push({ bench: name, measure: `failed: ${e.message}`, value: '-', target: '-', ok: false });
  }
}
printTable(rows);
