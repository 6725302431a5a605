#!/usr/bin/env node
// `npm run dist [-- electron-builder arguments]`: installers for this OS into dist/.
//   1. a clean build of main and renderer (out/main, out/renderer), so no stale file is packaged;
//   2. the icons rendered from resources/icons/vivarium.svg (scripts/icons.mjs);
//   3. electron-builder with electron-builder.yml; arguments pass through, e.g.
//      `npm run dist -- --linux dir`, `npm run dist -- --mac --arm64`,
//      `npm run dist -- --linux dir -c.electronDist=/path/to/unpacked/electron`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildIcons } from './icons.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function step(what, cmd, args) {
  process.stderr.write(`\n[dist] ${what}: ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { cwd: REPO, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    process.stderr.write(`[dist] ${what} failed (exit ${r.status ?? r.signal}).\n`);
    process.exit(r.status ?? 1);
  }
}

for (const d of ['main', 'renderer']) fs.rmSync(path.join(REPO, 'out', d), { recursive: true, force: true });
step('build', npm, ['run', 'build']);
process.stderr.write('[dist] icons\n');
buildIcons({ force: true });
step('installers', npx, ['electron-builder', ...process.argv.slice(2)]);
