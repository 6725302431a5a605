#!/usr/bin/env node
// Renders the app icon from its one source (resources/icons/vivarium.svg) into what the installers
// need, under out/build-resources/ (electron-builder.yml's buildResources):
//   icons/<N>x<N>.png   the Linux hicolor set (16 … 512)
//   icon.png            1024 px (Windows/Linux fallback, the tray uses resources/icons/ at run time)
//   icon.icns           macOS (png2icons: ic07…ic10 PNG-in-ICNS entries)
//   icon.ico            Windows (16 … 256, PNG-compressed entries)
// Nothing rendered is committed. Cached: skips work when every output exists and the stamp file
// (<out>/icons.sha256) holds the SHA-256 of the source SVG they were rendered from.
// Run by `npm run build` and, as electron-builder's beforePack hook (electron-builder.yml), before
// every electron-builder run, so `npx electron-builder --linux dir …` after `npm run build` and
// `npm run dist` both ship the icons and tray.png.
//
// Usage: node scripts/icons.mjs [--out DIR] [--force]
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import png2icons from 'png2icons';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ICON_SOURCE = path.join(REPO, 'resources', 'icons', 'vivarium.svg');
export const DEFAULT_OUT = path.join(REPO, 'out', 'build-resources');
/** The hicolor sizes a desktop uses (freedesktop icon theme spec; 512 is the largest hicolor has). */
export const LINUX_SIZES = Object.freeze([16, 24, 32, 48, 64, 128, 256, 512]);

/** The SVG rendered to a PNG `size` pixels square. */
export function renderPng(svg, size) {
  return new Resvg(svg, { fitTo: { mode: 'width', value: size }, background: 'rgba(0,0,0,0)' }).render().asPng();
}

/**
 * Writes every icon into `outDir`; returns the paths written.
 * @param {{ outDir?: string, force?: boolean, source?: string }} [opts]
 */
export function buildIcons(opts = {}) {
  const outDir = opts.outDir ?? DEFAULT_OUT;
  const source = opts.source ?? ICON_SOURCE;
  const svg = fs.readFileSync(source);
  const targets = [
    ...LINUX_SIZES.map((s) => path.join(outDir, 'icons', `${s}x${s}.png`)),
    path.join(outDir, 'icon.png'),
    path.join(outDir, 'icon.icns'),
    path.join(outDir, 'icon.ico'),
  ];
  const stamp = path.join(outDir, 'icons.sha256');
  const hash = `${createHash('sha256').update(svg).digest('hex')} ${LINUX_SIZES.join(',')}`;
  const stampNow = fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8') : null;
  if (!opts.force && stampNow === hash && targets.every((t) => fs.existsSync(t))) return targets;

  fs.mkdirSync(path.join(outDir, 'icons'), { recursive: true });
  for (const s of LINUX_SIZES) fs.writeFileSync(path.join(outDir, 'icons', `${s}x${s}.png`), renderPng(svg, s));
  const big = renderPng(svg, 1024);
  fs.writeFileSync(path.join(outDir, 'icon.png'), big);
  const icns = png2icons.createICNS(big, png2icons.BICUBIC2, 0);
  const ico = png2icons.createICO(big, png2icons.BICUBIC2, 0, false, true);
  if (!icns || !ico) throw new Error('png2icons could not convert the rendered icon.');
  fs.writeFileSync(path.join(outDir, 'icon.icns'), icns);
  fs.writeFileSync(path.join(outDir, 'icon.ico'), ico);
  fs.writeFileSync(stamp, hash);
  return targets;
}

/** electron-builder's beforePack hook (electron-builder.yml): the icons, rendered unless cached. */
export async function beforePack() {
  buildIcons();
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  const written = buildIcons({ outDir: outAt >= 0 ? path.resolve(args[outAt + 1]) : DEFAULT_OUT, force: args.includes('--force') });
  process.stderr.write(`[icons] ${written.length} files in ${path.dirname(written.at(-1))}\n`);
}
