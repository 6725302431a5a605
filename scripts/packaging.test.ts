/**
 * The installers' contents, built for real with electron-builder (electron-builder.yml) from the
 * compiled app in out/ (`npm test` builds it first).
 *
 * The Electron binary cannot be downloaded on these machines, so electronDist is a stub folder
 * holding an `electron` script: everything electron-builder adds around it (the asar, what is
 * unpacked, the Linux desktop entry, icons, MIME file, fpm arguments) is real. The deb and rpm are
 * built up to the point where electron-builder hands its arguments to fpm, which it downloads from
 * GitHub on first use; where fpm is not available the test says so and checks those arguments and
 * the generated desktop entry instead of the package file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWorkerSource } from '../main/services/stats/host-sampler';

const REPO = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  productName: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const METAINFO = path.join(REPO, 'resources', 'linux', 'io.github.vivarium.Vivarium.metainfo.xml');
const DESKTOP_SOURCE = path.join(REPO, 'resources', 'linux', 'vivarium.desktop');

interface FpmCall {
  readonly target: 'deb' | 'rpm';
  readonly args: readonly string[];
  readonly desktopEntry: string;
  /** The shared-mime-info file electron-builder wrote (a temp file, gone after the build). */
  readonly mimeXml: string | null;
}

interface Built {
  readonly outDir: string;
  readonly appDir: string;
  readonly asar: string;
  readonly unpacked: string;
  readonly fpm: FpmCall[];
  readonly realPackages: string[];
  readonly fpmNote: string | null;
}

let built: Built | null = null;
let tmp = '';

/** Where electron-builder keeps the fpm it downloads (app-builder's cache), if it ever did. */
function fpmAvailable(): boolean {
  if (spawnSync('fpm', ['--version'], { stdio: 'ignore' }).status === 0 && process.env.USE_SYSTEM_FPM === 'true') return true;
  const cache = process.env.ELECTRON_BUILDER_CACHE ?? path.join(os.homedir(), '.cache', 'electron-builder');
  // A finished download holds the `fpm` launcher; a failed one leaves an empty folder behind.
  const hasFpm = (dir: string, depth: number): boolean => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    return entries.some((e) => (e.isFile() && e.name === 'fpm') || (e.isDirectory() && depth > 0 && hasFpm(path.join(dir, e.name), depth - 1)));
  };
  try {
    return fs.readdirSync(cache).some((d) => d.startsWith('fpm') && hasFpm(path.join(cache, d), 3));
  } catch {
    return false;
  }
}

/** A stand-in for the unpacked Electron distribution: what electron-builder copies and renames. */
function stubElectronDist(dir: string): string {
  fs.mkdirSync(path.join(dir, 'resources'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'electron'), '#!/bin/sh\necho "stub Electron (packaging test)"\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'version'), '45.5.0');
  return dir;
}

async function buildLinux(): Promise<Built> {
  for (const f of ['out/main/app/main.js', 'out/main/app/preload.js', 'out/renderer/index.html', 'out/main/services/stats/host-sampler-worker.js']) {
    if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} is missing: run \`npm run build\` first (npm test does).`);
  }
  // Nothing here renders the icons: electron-builder's beforePack hook (electron-builder.yml) must,
  // as it does for `npx electron-builder --linux dir` after `npm run build`. A missing 32 px icon and
  // stamp force it to render them again.
  for (const f of ['out/build-resources/icons/32x32.png', 'out/build-resources/icons.sha256']) fs.rmSync(path.join(REPO, f), { force: true });
  const eb = await import('electron-builder');
  const outDir = path.join(tmp, 'dist');
  const withFpm = fpmAvailable();
  const fpm: FpmCall[] = [];
  let current: 'deb' | 'rpm' = 'deb';
  const artifacts = await eb.build({
    projectDir: REPO,
    targets: eb.Platform.LINUX.createTarget(['dir', 'deb', 'rpm'], eb.Arch.x64),
    config: { electronDist: stubElectronDist(path.join(tmp, 'electron')), directories: { output: outDir }, publish: null },
    // Called by the deb/rpm targets with [fpm arguments, generated desktop entry] right before fpm
    // runs; returning true stops there (no fpm here), false lets the package be built.
    effectiveOptionComputed: async (o: unknown) => {
      if (!Array.isArray(o) || !Array.isArray(o[0]) || typeof o[1] !== 'string') return false;
      const args = o[0] as string[];
      current = args.some((a) => a.endsWith('.rpm')) ? 'rpm' : 'deb';
      const mime = args.find((a) => a.endsWith('=/usr/share/mime/packages/vivarium.xml'));
      const mimeXml = mime ? fs.readFileSync(mime.slice(0, mime.indexOf('=')), 'utf8') : null;
      fpm.push({ target: current, args, desktopEntry: fs.readFileSync(o[1], 'utf8'), mimeXml });
      return !withFpm;
    },
  });
  const appDir = path.join(outDir, 'linux-unpacked');
  return {
    outDir,
    appDir,
    asar: path.join(appDir, 'resources', 'app.asar'),
    unpacked: path.join(appDir, 'resources', 'app.asar.unpacked'),
    fpm,
    realPackages: artifacts.filter((a) => /\.(deb|rpm)$/.test(a)),
    fpmNote: withFpm
      ? null
      : 'NOTE: the deb and rpm files were NOT built here: electron-builder downloads fpm from GitHub on first use, which this machine cannot reach. ' +
        'Checked instead: the arguments electron-builder passes to fpm and the desktop entry it generates.',
  };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-packaging-'));
  built = await buildLinux();
  if (built.fpmNote) console.log(built.fpmNote);
}, 300_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const b = (): Built => {
  if (!built) throw new Error('the package was not built');
  return built;
};

/** Parses a desktop entry's [Desktop Entry] group into key → value. */
function desktopKeys(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let inMain = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('[')) inMain = line.trim() === '[Desktop Entry]';
    else if (inMain && line.includes('=')) out.set(line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1));
  }
  return out;
}

describe('npm run dist (electron-builder --linux dir, deb, rpm with a stub Electron)', () => {
  it('the asar holds the compiled app, production dependencies and resources: no sources, tests or dev dependencies', async () => {
    const asar = await import('@electron/asar');
    const entries = asar.listPackage(b().asar, { isPack: false }).map((e) => e.replace(/\\/g, '/'));
    const files = new Set(entries);

    for (const must of ['/package.json', '/out/main/app/main.js', '/out/main/app/preload.js', '/out/main/app/cli-dispatch.js', '/out/main/cli/index.js', '/out/main/cli/vivarium.js', '/out/renderer/index.html', '/resources/icons/vivarium.svg']) {
      expect(files, must).toContain(must);
    }
    expect(entries.some((e) => e.startsWith('/out/renderer/assets/') && e.endsWith('.js'))).toBe(true);
    const packaged = JSON.parse(asar.extractFile(b().asar, 'package.json').toString()) as { main: string; productName: string };
    expect(files).toContain(`/${packaged.main}`);
    expect(packaged.productName).toBe('Vivarium');

    expect(entries.filter((e) => /\.test\./.test(path.posix.basename(e)))).toEqual([]);
    expect(entries.filter((e) => /\.(ts|tsx|mts|cts)$/.test(e))).toEqual([]);
    expect(entries.filter((e) => e.endsWith('.map'))).toEqual([]);
    expect(entries.filter((e) => /^\/(main|renderer|e2e|bench|scripts|docs|\.cache|test-results)\//.test(e))).toEqual([]);
    expect(entries.filter((e) => e.startsWith('/out/main/test-support/'))).toEqual([]);
    expect(entries.filter((e) => e.includes('/test-fixtures/'))).toEqual([]);
    // Build-time only: node-pty's C++ headers.
    expect(entries.filter((e) => e.includes('/node-addon-api/'))).toEqual([]);
    expect(entries.filter((e) => e.startsWith('/resources/linux/') || e.startsWith('/resources/mac/'))).toEqual([]);

    // Top-level node_modules: each a production dependency (or one of theirs), never a dev one.
    const modules = new Set(
      entries.flatMap((e) => {
        const m = /^\/node_modules\/(@[^/]+\/[^/]+|[^@/][^/]*)(?:\/|$)/.exec(e);
        return m ? [m[1]!] : [];
      }),
    );
    const prodTree = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .map((p) => /node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(p)?.[1])
      .filter((n): n is string => !!n);
    const prod = new Set(prodTree);
    for (const dep of Object.keys(PKG.dependencies)) expect(modules, dep).toContain(dep);
    for (const m of modules) expect(prod.has(m), `${m} is packaged but not a production dependency`).toBe(true);
    for (const dev of Object.keys(PKG.devDependencies)) {
      if (!prod.has(dev)) expect(modules.has(dev), `dev dependency ${dev} is packaged`).toBe(false);
    }

    // Every package the Electron main process requires (compiled app, server, services, common) is
    // in the asar: a runtime import of a dev dependency would break only the installed app.
    const required = new Set<string>();
    for (const dir of ['app', 'server', 'services', 'common']) {
      for (const f of fs.readdirSync(path.join(REPO, 'out', 'main', dir), { recursive: true }) as string[]) {
        if (!f.endsWith('.js')) continue;
        for (const m of fs.readFileSync(path.join(REPO, 'out', 'main', dir, f), 'utf8').matchAll(/require\("([^".][^"]*)"\)/g)) {
          const spec = m[1]!;
          if (spec.startsWith('node:') || builtinModules.includes(spec) || spec === 'electron') continue;
          required.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
    expect(required.size).toBeGreaterThan(3);
    for (const r of required) expect(files, `${r} is required at run time but not packaged`).toContain(`/node_modules/${r}/package.json`);
  });

  it('ships the tray icon beside the asar (process.resourcesPath/tray.png), a 32 px PNG rendered from resources/icons/vivarium.svg', () => {
    const png = fs.readFileSync(path.join(b().appDir, 'resources', 'tray.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([32, 32]);
    expect(png.equals(fs.readFileSync(path.join(REPO, 'out', 'build-resources', 'icons', '32x32.png')))).toBe(true);
  });

  it('installs the app icon rendered from the SVG at every hicolor size, not Electron’s default', () => {
    for (const call of b().fpm) {
      for (const size of [16, 24, 32, 48, 64, 128, 256, 512]) {
        const arg = call.args.find((a) => a.endsWith(`=/usr/share/icons/hicolor/${size}x${size}/apps/vivarium.png`));
        expect(arg, `${call.target} ${size}px icon`).toBeDefined();
        const src = arg!.slice(0, arg!.lastIndexOf('='));
        expect(src, `${call.target} ${size}px icon source`).not.toContain('electron-linux');
        const png = fs.readFileSync(src);
        expect([png.readUInt32BE(16), png.readUInt32BE(20)], src).toEqual([size, size]);
      }
    }
  });

  it('node-pty’s native module and the host statistics worker are unpacked, and run from there', async () => {
    const { unpacked, asar: archive } = b();
    const asar = await import('@electron/asar');
    const ptyNode = 'node_modules/node-pty/build/Release/pty.node';
    const worker = 'out/main/services/stats/host-sampler-worker.js';
    for (const rel of [ptyNode, worker]) {
      expect(fs.existsSync(path.join(unpacked, rel)), rel).toBe(true);
      expect((asar.statFile(archive, rel) as { unpacked?: boolean }).unpacked, `${rel} marked unpacked in the asar`).toBe(true);
    }

    // The code resolves the unpacked worker when it runs from app.asar.
    const statsInAsar = path.join(path.dirname(archive), 'app.asar', 'out', 'main', 'services', 'stats');
    expect(defaultWorkerSource(statsInAsar)).toEqual({ kind: 'file', path: path.join(unpacked, worker) });

    // The worker runs from the unpacked folder with its dependency found there, and answers.
    const w = new Worker(path.join(unpacked, worker));
    try {
      const reply = await new Promise<{ type: string; id: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        w.postMessage({ type: 'read', id: 7 });
      });
      expect(reply).toMatchObject({ type: 'reading', id: 7 });
    } finally {
      await w.terminate();
    }
    const si = execFileSync(process.execPath, ['-p', `require.resolve('systeminformation', { paths: [${JSON.stringify(path.join(unpacked, 'out/main/services/stats'))}] })`], {
      encoding: 'utf8',
    }).trim();
    expect(si.startsWith(unpacked + path.sep)).toBe(true);

    // node-pty from the unpacked copy opens a real pty.
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `const pty = require(${JSON.stringify(path.join(unpacked, 'node_modules', 'node-pty'))});
         const p = pty.spawn('/bin/sh', ['-c', 'echo pty-from-unpacked'], {});
         let s = ''; p.onData((d) => (s += d)); p.onExit(() => { process.stdout.write(s); process.exit(0); });`,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(out).toContain('pty-from-unpacked');
  });

  it('generates a desktop entry that desktop-file-validate accepts and that matches resources/linux/vivarium.desktop', () => {
    const { fpm } = b();
    expect(fpm.map((c) => c.target).sort()).toEqual(['deb', 'rpm']);
    const source = desktopKeys(fs.readFileSync(DESKTOP_SOURCE, 'utf8'));
    for (const call of fpm) {
      const file = path.join(tmp, `${call.target}-vivarium.desktop`);
      fs.writeFileSync(file, call.desktopEntry);
      const v = spawnSync('desktop-file-validate', [file], { encoding: 'utf8' });
      expect(v.error, 'desktop-file-validate (Debian package desktop-file-utils) must be installed').toBeUndefined();
      expect(`${v.stdout}${v.stderr}`.trim()).toBe('');
      expect(v.status).toBe(0);
      expect(Object.fromEntries(desktopKeys(call.desktopEntry))).toEqual(Object.fromEntries(source));
      // Where each piece lands in the package.
      expect(call.args).toContain(`${path.join(b().appDir)}/=/opt/Vivarium`);
      expect(call.args.some((a) => /=\/usr\/share\/applications\/vivarium\.desktop$/.test(a))).toBe(true);
      expect(call.args.some((a) => /=\/usr\/share\/mime\/packages\/vivarium\.xml$/.test(a))).toBe(true);
      expect(call.args).toContain(`resources/linux/${path.basename(METAINFO)}=/usr/share/metainfo/${path.basename(METAINFO)}`);
      for (const size of [16, 32, 48, 64, 128, 256, 512]) {
        expect(call.args.some((a) => a.endsWith(`=/usr/share/icons/hicolor/${size}x${size}/apps/vivarium.png`)), `${size}px icon`).toBe(true);
      }
    }
    const source2 = fs.readFileSync(DESKTOP_SOURCE, 'utf8');
    expect(spawnSync('desktop-file-validate', [DESKTOP_SOURCE], { encoding: 'utf8' }).status, source2).toBe(0);
    const rpm = fpm.find((c) => c.target === 'rpm')!;
    expect(rpm.args.join(' ')).toMatch(/Recommends: qemu-kvm.*Recommends: qemu-img.*Recommends: edk2-ovmf/);
  });

  it('the rpm depends on packages every rpm distro has: openSUSE’s libXtst6/libuuid1 as alternatives', async () => {
    // electron-builder adds --depends after effectiveOptionComputed, so read what it is given.
    const { parse } = await import('yaml');
    const cfg = parse(fs.readFileSync(path.join(REPO, 'electron-builder.yml'), 'utf8')) as { rpm: { depends: string[] } };
    expect(cfg.rpm.depends).toContain('(libXtst or libXtst6)');
    expect(cfg.rpm.depends).toContain('(libuuid or libuuid1)');
    expect(cfg.rpm.depends.filter((d) => /^(libXtst|libuuid)$/.test(d))).toEqual([]);
  });

  it('ships AppStream metadata that appstreamcli validate accepts, for this version', () => {
    const v = spawnSync('appstreamcli', ['validate', '--no-net', METAINFO], { encoding: 'utf8' });
    expect(v.error, 'appstreamcli (Debian package appstream) must be installed').toBeUndefined();
    expect(v.status, `${v.stdout}${v.stderr}`).toBe(0);
    const xml = fs.readFileSync(METAINFO, 'utf8');
    expect(xml).toContain(`<release version="${PKG.version}"`);
    expect(xml).toContain('<launchable type="desktop-id">vivarium.desktop</launchable>');
    expect(xml).toContain('<mediatype>application/x-vivarium</mediatype>');
  });

  it('registers the .vivarium file type (MIME type in the desktop entry, a shared-mime-info glob)', () => {
    const call = b().fpm[0]!;
    expect(desktopKeys(call.desktopEntry).get('MimeType')).toBe('application/x-vivarium;');
    const mime = call.mimeXml ?? '';
    expect(mime).toContain('<mime-type type="application/x-vivarium">');
    expect(mime).toContain('<glob pattern="*.vivarium"/>');
  });

  it('builds the deb where fpm exists, and says plainly when it did not', () => {
    const { fpmNote, realPackages } = b();
    if (fpmNote) {
      // Not a pass in disguise: the test output carries the note, and nothing claims a deb.
      expect(realPackages).toEqual([]);
      console.log(fpmNote);
      return;
    }
    const deb = realPackages.find((p) => p.endsWith('.deb'));
    expect(deb).toBeDefined();
    const info = execFileSync('dpkg-deb', ['--info', deb!], { encoding: 'utf8' });
    expect(info).toMatch(/Recommends:.*qemu-system-x86.*qemu-utils.*ovmf/);
    const contents = execFileSync('dpkg-deb', ['--contents', deb!], { encoding: 'utf8' });
    expect(contents).toContain('./usr/share/applications/vivarium.desktop');
    expect(contents).toContain(`./usr/share/metainfo/${path.basename(METAINFO)}`);
    expect(contents).toContain('./opt/Vivarium/resources/app.asar');
  });
});
