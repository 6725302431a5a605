// vitest globalSetup: builds the test guests once per run (scripts/build-test-guest.mjs; fast when
// already built). Its log is shown only when it fails, and then the whole run fails with it: every
// QEMU test needs the guest, so carrying on would only bury the cause under many timeouts.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'build-test-guest.mjs');

export default function setup(): void {
  const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) return;
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  process.stderr.write(`${output}\n`);
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
  throw new Error(`Building the test guest failed (${why}):\n${output}`);
}
