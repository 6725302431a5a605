/**
 * The Electron entry (package.json "main" → out/main/app/main.js). Everything real happens in
 * electron-app.ts; this file only hands it the Electron module and the built files' locations.
 *
 * Nothing else in the product imports Electron: the CLI and `vivarium serve` run on plain Node.
 */
import * as fs from 'node:fs';
import { BrowserWindow, Menu, Tray, app, dialog, nativeImage, nativeTheme, protocol, session, shell } from 'electron';
import { COMMANDS } from '../cli/commands';
import { hostEngine } from '../server/engine-host';
import { cliArgs, cliBundlePath, runCli, userArgsOf } from './cli-dispatch';
import { appPaths, startApp } from './electron-app';
import { launchCommandFor, trayIconCandidates } from './tray';

// Under plain Node, require('electron') is the path of the binary, not the API.
if (typeof app !== 'object' || app === null) {
  process.stderr.write('This is the Electron entry point: run it with `npm start` (or `electron .`). For the browser UI use `vivarium serve`.\n');
  process.exit(1);
}

// `vivarium doctor`, `vivarium list --json`…: the installed binary is also the command line
// (main/app/cli-dispatch.ts). No window, no single-instance lock, no engine of the app's own.
const cli = cliArgs(userArgsOf(process.argv, app.isPackaged), new Set(Object.keys(COMMANDS)));
if (cli) {
  app.dock?.hide();
  runCli(process.execPath, cliBundlePath(__dirname), cli, process.env).then(
    (code) => app.exit(code),
    () => app.exit(1),
  );
} else {
  startApp(
    { app, BrowserWindow, Menu, dialog, protocol, session, shell, nativeTheme, Tray, nativeImage },
    {
      env: process.env,
      argv: process.argv.slice(1),
      ...appPaths(__dirname),
      hostEngine,
      trayIcon: trayIconCandidates(process.resourcesPath, __dirname).find((p) => fs.existsSync(p)) ?? null,
      // Packaged: the executable (the AppImage file in an AppImage); unpackaged: electron + this app's folder.
      launchCommand: launchCommandFor({ execPath: process.execPath, isPackaged: app.isPackaged, appPath: app.getAppPath(), env: process.env }),
    },
  );
}
