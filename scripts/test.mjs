// `npm test`: the one test command (README, .ci/run). Builds, lints, type-checks, then runs the unit
// and integration tests (vitest, real QEMU under TCG) and the end-to-end tests (Playwright, Debian's
// chromium against `vivarium serve`, plus the Electron project where its binary exists).
import { spawnSync } from 'node:child_process';

const steps = [
  ['build', 'npm', ['run', 'build']],
  ['lint', 'npx', ['eslint', '.']],
  // Electron security anti-patterns in main/app and renderer (@doyensec/electronegativity); answered
  // false positives are listed in the script.
  ['electron-security', 'node', ['scripts/electronegativity.mjs']],
  ['typecheck', 'npm', ['run', 'typecheck']],
  ['unit + integration', 'npx', ['vitest', 'run']],
  ['e2e', 'npx', ['playwright', 'test']],
];

const only = process.argv.slice(2);
const results = [];
for (const [name, cmd, args] of steps) {
  if (only.length && !only.includes(name.split(' ')[0])) continue;
  const t0 = Date.now();
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: process.env });
  const ok = r.status === 0;
  results.push([name, ok, ((Date.now() - t0) / 1000).toFixed(0)]);
  if (!ok) break;
}
console.log('\n=== summary');
for (const [name, ok, s] of results) console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${s} s)`);
process.exit(results.every(([, ok]) => ok) && results.length > 0 ? 0 : 1);
