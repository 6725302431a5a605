// Builds the test guests once (the same builder vitest uses; `npm test` builds the app itself), and
// says up front whether the Electron project can run on this machine.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { electronBinary, ELECTRON_MISSING } from './fixtures';

export default function globalSetup(): void {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'build-test-guest.mjs')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`Could not build the test guest:\n${r.stderr}`);
  const bin = electronBinary();
  console.log(bin ? `Electron e2e project: running against ${bin}.` : `NOTE: ${ELECTRON_MISSING} Its tests are listed as skipped.`);
}
