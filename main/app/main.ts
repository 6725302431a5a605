/**
 * The Electron entry (package.json "main" → out/main/app/main.js). Everything real happens in
 * electron-app.ts; this file only hands it the Electron module and the built files' locations.
 *
 * Nothing else in the product imports Electron: the CLI and `vivarium serve` run on plain Node.
 */
import * as fs from 'node:fs';
import { BrowserWindow, Menu, Tray, app, dialog, nativeImage, nativeTheme, protocol, session, shell } from 'electron';
import { hostEngine } from '../server/engine-host';
import { appPaths, startApp } from './electron-app';
import { trayIconCandidates } from './tray';

// Under plain Node, require('electron') is the path of the binary, not the API.
if (typeof app !== 'object' || app === null) {
  process.stderr.write('This is the Electron entry point: run it with `npm start` (or `electron .`). For the browser UI use `vivarium serve`.\n');
  process.exit(1);
}

startApp(
  { app, BrowserWindow, Menu, dialog, protocol, session, shell, nativeTheme, Tray, nativeImage },
  {
    env: process.env,
    argv: process.argv.slice(1),
    ...appPaths(__dirname),
    hostEngine,
    trayIcon: trayIconCandidates(process.resourcesPath, __dirname).find((p) => fs.existsSync(p)) ?? null,
    // Packaged: the executable; unpackaged: electron + this app's folder.
    launchCommand: app.isPackaged ? [process.execPath] : [process.execPath, app.getAppPath()],
  },
);
