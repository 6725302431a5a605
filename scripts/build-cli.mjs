// Bundles the `vivarium` command into one file, out/main/cli/vivarium.js, which bin/vivarium.js
// runs. Loading ~60 compiled modules one by one cost ~100 ms of every command (issue 7); one
// bundled file is read and compiled at once. Run by `npm run build:main` after tsc (which type-checks
// and emits the modules the app and the tests use).
//
// - zod is bundled from its ES modules (mainFields module first) so that what the CLI never uses
//   can be dropped; ws too.
// - node-pty (native) and systeminformation stay outside: the first is loaded only by a serving
//   engine, the second only inside the host-sampler worker.
// - V8's code cache for the bundle is recorded after running, on a temporary library, `list`, then a
//   create, list, show and a start its disk check refuses (recordCache), so what `start` runs before it
//   launches QEMU is compiled from the cache too, then a live `snapshot create` of a VM that runs
//   (bin/vivarium.js loads it; a cache that does not fit is ignored by V8).
// - Each Node built-in gets one namespace object (shareBuiltinNamespaces).
// - The worker is bundled next to the CLI (host-sampler.ts looks for host-sampler-worker.js in its
//   own folder), and the bundle sits in out/main/cli/ like tsc's index.js, so paths resolved from
//   __dirname (the renderer for `serve`) are the same.
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { isBuiltin } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(REPO, 'out', 'main', 'cli');

/**
 * `await import('node:dgram')` of a Node built-in stays a real import() in esbuild's output, which a
 * vm.Script cannot run (bin/vivarium.js): such imports become a small bundled module that requires
 * the built-in, so they stay lazy and work.
 */
const builtinDynamicImports = {
  name: 'builtin-dynamic-imports',
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) =>
      args.kind === 'dynamic-import' && isBuiltin(args.path) ? { path: args.path, namespace: 'builtin-lazy' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'builtin-lazy' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * Parts of zod the engine never calls but its entry re-exports as namespaces, which a bundler must
 * then keep and run at start-up: 40 message locales (`z.locales`; English is registered by the
 * schemas module itself) and the JSON Schema importer (`z.fromJSONSchema`). ~10 ms of every command
 * (issue 7). Calling either in the CLI throws a sentence saying so.
 */
const zodUnused = {
  name: 'zod-unused',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$|^\.\/from-json-schema\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]v4[\\/](core|classic)[\\/]/.test(args.importer) ? { path: args.path, namespace: 'zod-unused' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-unused' }, (args) => ({
      contents: args.path.includes('locales')
        ? 'export {};'
        : 'export function fromJSONSchema() { throw new Error("z.fromJSONSchema is left out of the CLI bundle (scripts/build-cli.mjs)."); }',
      loader: 'js',
    }));
  },
};

const common = {
  plugins: [builtinDynamicImports, zodUnused],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  mainFields: ['module', 'main'],
  external: ['node-pty', 'systeminformation', 'electron'],
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  absWorkingDir: REPO,
  // Written below, each file atomically: CLI commands (other people's tests) may run meanwhile.
  write: false,
};

/** Writes a file whole or not at all (temp file in the same folder, then rename). */
function writeAtomic(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

const [cli, worker] = await Promise.all([
  esbuild.build({ ...common, metafile: true, entryPoints: [path.join(REPO, 'main', 'cli', 'index.ts')], outfile: path.join(OUT, 'vivarium.js') }),
  esbuild.build({
    ...common,
    entryPoints: [path.join(REPO, 'main', 'services', 'stats', 'host-sampler-worker.ts')],
    outfile: path.join(OUT, 'host-sampler-worker.js'),
  }),
]);

// bin/vivarium.js runs the bundle as a vm.Script, where a real import() has no loader: every dynamic
// import must be of a bundled module (esbuild turns those into plain calls).
for (const [file, input] of Object.entries(cli.metafile.inputs)) {
  for (const i of input.imports) {
    if (i.kind === 'dynamic-import' && i.external) {
      console.error(`build-cli: ${file} imports ${i.path} dynamically and it is not bundled; bundle it or load it with require().`);
      process.exit(1);
    }
  }
}

/**
 * `import * as fs from 'node:fs'` becomes `__toESM(require("node:fs"))` in each of the ~40 modules
 * that say it, and every call copies the module's properties into a new namespace object (fs has
 * ~100): ~3 ms of every command (issue 7). Those calls on a Node built-in become `__esmNS(…)`, which
 * makes the namespace once per built-in and hands the same one to every importer (a namespace is a
 * read-only view, so sharing it changes nothing). Same length, so the source map stays right; the
 * helper is a function declaration appended at the end, hoisted like esbuild's own helpers.
 */
function shareBuiltinNamespaces(text) {
  if (!/var __toESM=/.test(text) || text.includes('__esmNS')) return text;
  const out = text.replace(/__toESM\((require\("(?:node:)?[a-z_/]+"\))\)/g, (all, call) => (isBuiltin(/"(.*)"/.exec(call)[1]) ? `__esmNS(${call})` : all));
  return `${out}\nfunction __esmNS(m){const c=__esmNS.c??=new WeakMap;let n=c.get(m);if(n===void 0)c.set(m,n=__toESM(m));return n}\n`;
}

// Everything but the bundle first, the bundle last (the old cache no longer matches it: V8 ignores
// it until the new one is in place).
// The bundle ends with its build id (a hash of its text): bin/vivarium.js uses a code cache only
// when the cache names the same id. V8's own check compares little more than the source's length.
const files = [...worker.outputFiles, ...cli.outputFiles].sort((a, b) => Number(a.path.endsWith('vivarium.js')) - Number(b.path.endsWith('vivarium.js')));
for (const f of files) {
  if (f.path.endsWith('vivarium.js')) {
    f.contents = Buffer.from(shareBuiltinNamespaces(Buffer.from(f.contents).toString('latin1')), 'latin1');
    // bin/vivarium.js reads the bundle as latin1: it must be ASCII (esbuild's default charset).
    const wide = f.contents.findIndex((b) => b > 0x7f);
    if (wide >= 0) {
      console.error(`build-cli: the bundle has a non-ASCII byte at offset ${wide}; keep esbuild's charset "ascii".`);
      process.exit(1);
    }
    const id = createHash('sha256').update(f.contents).digest('hex').slice(0, 16);
    writeAtomic(f.path, Buffer.concat([Buffer.from(f.contents), Buffer.from(`\n//# vivarium-build=${id}\n`)]));
  } else {
    writeAtomic(f.path, f.contents);
  }
}

// The code caches: each compiled in a separate Node with the V8 flags it will be used under (V8
// refuses a cache made under other flags): none (`node bin/vivarium.js`, and `vivarium` today), and
// any that bin/vivarium.js's sh launcher (its second line) gives Node in `node FLAGS "$0" "$@"`. A
// 16 MB young generation (--min-semi-space-size=16) was tried there and dropped: it saved ~6
// scavenges but cost 30-40 ms of fresh pages per command.
const launcher = fs.readFileSync(path.join(REPO, 'bin', 'vivarium.js'), 'utf8').split('\n', 2)[1] ?? '';
const launcherFlags = [...launcher.matchAll(/\bnode((?: --?[^ "]+)*) "\$0" "\$@"/g)].map((m) => m[1].trim().split(' ').filter(Boolean));
const flagSets = new Map([[[].join(' '), []], ...launcherFlags.map((f) => [f.join(' '), f])]);
for (const flags of flagSets.values()) recordCache(flags);

function recordCache(flags) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-build-'));
  try {
    // The files the exercise VM points at: a kernel and an initrd (any file: nothing boots) and a
    // raw disk of whole sectors, cut to a size no disk has before the start (see below).
    fs.writeFileSync(path.join(tmp, 'vmlinuz'), Buffer.alloc(4096));
    fs.writeFileSync(path.join(tmp, 'initrd.img'), Buffer.alloc(4096));
    fs.writeFileSync(path.join(tmp, 'disk.raw'), Buffer.alloc(1024 * 1024));
    const script = `
      const fs = require('node:fs');
      const path = require('node:path');
      const { Writable } = require('node:stream');
      const { loadCli, cacheFileFor, BUNDLE } = require(${JSON.stringify(path.join(REPO, 'bin', 'vivarium.js'))});
      const tmp = ${JSON.stringify(tmp)};
      const cli = loadCli(BUNDLE, { produceCache: true });
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      const env = { ...process.env, VIVARIUM_HOME: path.join(tmp, 'home'), VIVARIUM_RUNTIME_DIR: path.join(tmp, 'run'), VIVARIUM_NO_ENGINE: '1' };
      const run = (argv, stderr = sink) => cli.exports.main(argv, { stdout: sink, stderr, env });
      (async () => {
        const code = await run(['list', '--json'], process.stderr);
        if (code !== 0) process.exit(code);
        // What "vivarium start NAME" runs before it launches QEMU, so that those functions come
        // compiled from the cache too (issue 7's start row): create, list, show, then a start that
        // the disk check refuses (a raw disk of 1000 bytes is no disk). Best effort: without QEMU
        // on this machine these fail early and the cache simply holds less.
        const vm = ['--accel', 'tcg', '--memory', '64M', '--cpus', '1', '--display', 'none', '--net', 'none',
          '--kernel', path.join(tmp, 'vmlinuz'), '--initrd', path.join(tmp, 'initrd.img'), '--append', 'console=ttyS0',
          '--disk', path.join(tmp, 'disk.raw')];
        if ((await run(['create', 'cache-vm', ...vm])) === 0) {
          await run(['list']);
          await run(['show', 'cache-vm', '--json']);
          fs.truncateSync(path.join(tmp, 'disk.raw'), 1000);
          await run(['start', 'cache-vm', '--wait-serial', 'login:', '--timeout', '5']);
        }
        // A live snapshot (issue 10's row: QMP client, monitor, snapshot service) of a VM that really
        // runs: 64 MiB and nothing to boot (the firmware finds no bootable disk), so it saves at once.
        if ((await run(['create', 'cache-live', '--accel', 'tcg', '--memory', '64M', '--cpus', '1', '--display', 'none', '--net', 'none', '--disk-size', '64M'])) === 0 && (await run(['start', 'cache-live'])) === 0) {
          await run(['snapshot', 'create', 'cache-live']).finally(() => run(['stop', 'cache-live', '--force']));
        }
        const cacheFile = cacheFileFor(BUNDLE, ${JSON.stringify(flags)});
        fs.writeFileSync(cacheFile + '.tmp', Buffer.concat([Buffer.from(cli.buildId + '\\n'), cli.createCache()]));
        fs.renameSync(cacheFile + '.tmp', cacheFile);
        process.exit(0);
      })().catch((e) => {
        console.error(e);
        process.exit(1);
      });
    `;
    const r = spawnSync(process.execPath, [...flags, '-e', script], { stdio: 'inherit' });
    if (r.status !== 0) {
      console.error('build-cli: could not record the code cache (the CLI still works, only slower to start).');
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
