// Builds the test guests once (the same builder vitest uses); the app itself is built by `npm test`.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export default function globalSetup(): void {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'build-test-guest.mjs')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`Could not build the test guest:\n${r.stderr}`);
}
