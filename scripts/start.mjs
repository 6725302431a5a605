// `npm start`: builds Vivarium and opens the desktop app in Electron — or, when there is no Electron
// binary (`npm install` with ELECTRON_SKIP_BINARY_DOWNLOAD=1, a failed download, a machine Electron
// does not support), says so in one sentence that points to the browser UI (`vivarium serve`)
// instead of the electron package's stack trace or its attempt to download on the spot.
//
// The binary is found the way the electron package itself finds it (node_modules/electron/index.js,
// install.js of electron 45): `path.txt` names the executable inside `dist/` (or inside
// $ELECTRON_OVERRIDE_DIST_PATH), and the file must exist. This script never requires the package,
// because requiring it starts a download when the binary is missing.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where the Electron executable is, or why there is none.
 * @param {{ packageDir?: string | null, env?: NodeJS.ProcessEnv }} [o] packageDir: the electron
 *   package's folder (default: resolved from this repository; null when it is not installed).
 * @returns {{ path: string } | { missing: string }} `missing` is a sentence fragment ("the electron
 *   package is not installed", "Electron's binary was not downloaded", …).
 */
export function findElectron(o = {}) {
  const env = o.env ?? process.env;
  const dir = o.packageDir === undefined ? electronPackageDir() : o.packageDir;
  if (!dir) return { missing: 'the electron package is not installed' };
  let exe = '';
  try {
    exe = fs.readFileSync(path.join(dir, 'path.txt'), 'utf8').trim();
  } catch {
    // No path.txt: the package's install step never put a binary in place.
  }
  const distDir = env.ELECTRON_OVERRIDE_DIST_PATH || path.join(dir, 'dist');
  if (!exe && !env.ELECTRON_OVERRIDE_DIST_PATH) return { missing: "Electron's binary was not downloaded" };
  const full = path.join(distDir, exe || 'electron');
  if (!fs.existsSync(full)) return { missing: `Electron's binary is missing (${full})` };
  return { path: full };
}

function electronPackageDir() {
  try {
    return path.dirname(createRequire(path.join(REPO, 'package.json')).resolve('electron/package.json'));
  } catch {
    return null;
  }
}

/** The sentence `npm start` ends with when Electron cannot run here. */
export function noElectronMessage(missing) {
  return (
    `vivarium: the desktop app cannot open: ${missing}. ` +
    'Use the same Vivarium in a browser instead: run `npm run serve` (that is `vivarium serve`) and open the address it prints. ' +
    'To get the desktop app, run `npx install-electron` here (it downloads Electron; npm skips that when ELECTRON_SKIP_BINARY_DOWNLOAD=1 is set), then `npm start` again.\n'
  );
}

async function main() {
  const electron = findElectron();
  if ('missing' in electron) {
    process.stderr.write(noElectronMessage(electron.missing));
    return 1;
  }
  // npm_execpath: the npm that runs this script (`npm start`); plain `npm` when run by hand.
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const built = spawnSync(npm[0], [...npm.slice(1), 'run', 'build'], { cwd: REPO, stdio: 'inherit' });
  if (built.status !== 0) return built.status ?? 1;
  const child = spawn(electron.path, [REPO, ...process.argv.slice(2)], { cwd: REPO, stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => {
    child.once('error', (e) => {
      process.stderr.write(noElectronMessage(`Electron did not start (${e.message})`));
      resolve(1);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
