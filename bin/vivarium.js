#!/bin/sh
':' //; if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then VIVARIUM_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export VIVARIUM_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"
'use strict';
// The two lines above are the launcher, read by sh (for sh, line 2 is `:` and shell built-ins, then
// node; for JavaScript, a string and a comment). Node 20 parses the file NODE_EXTRA_CA_CERTS names before
// any JavaScript runs, in every process: with a system bundle that is ~38 ms of every command
// (issue 7). The launcher moves it to VIVARIUM_EXTRA_CA_CERTS for the lines below, which hand the
// file to Vivarium's HTTPS client (it adds the certificates when it makes a request:
// main/services/media/tls-trust.ts), and runs Node without flags (the code cache below is recorded
// for none). `node bin/vivarium.js` skips the launcher:
// Node then loads NODE_EXTRA_CA_CERTS itself.
// The `vivarium` command. `npm run build` (also run by `npm install` through `prepare`) bundles the
// TypeScript sources into out/main/cli/vivarium.js (scripts/build-cli.mjs) and stores V8's compiled
// code for that file next to it (vivarium.js.cache), so a short command spends its time in Node's own
// start-up rather than in loading modules. The cache is only a speed-up: V8 checks that it matches
// this exact source and this Node, and when it does not (another Node version) the file is compiled
// as usual.
const path = require('node:path');
const fs = require('node:fs');
const vm = require('node:vm');
const Module = require('node:module');

// The launcher kept NODE_EXTRA_CA_CERTS from this Node only (Node reads it once, at start-up, so
// setting it now changes nothing here): the programs Vivarium starts (ssh, QEMU and its helpers,
// another Node) get it back as the person set it, and not VIVARIUM_EXTRA_CA_CERTS. Vivarium's HTTPS
// client finds the file under this global (main/services/media/tls-trust.ts, MOVED_EXTRA_CA_CERTS).
{
  const moved = process.env.VIVARIUM_EXTRA_CA_CERTS;
  delete process.env.VIVARIUM_EXTRA_CA_CERTS;
  if (moved && process.env.NODE_EXTRA_CA_CERTS === undefined) {
    process.env.NODE_EXTRA_CA_CERTS = moved;
    Object.defineProperty(globalThis, Symbol.for('vivarium.movedExtraCaCerts'), { value: moved });
  }
}

const BUNDLE = path.join(__dirname, '..', 'out', 'main', 'cli', 'vivarium.js');

/**
 * Where the code cache for `file` is, for the V8 flags this Node runs with: V8 refuses a cache made
 * under other flags, so each set of flags Node may run this file with has its own (today only none:
 * `node bin/vivarium.js` and the launcher's `node "$0"`; scripts/build-cli.mjs records one for each
 * set the launcher line names).
 * @param {string} file
 * @param {readonly string[]} [execArgv]
 */
function cacheFileFor(file, execArgv = process.execArgv) {
  if (execArgv.length === 0) return `${file}.cache`;
  return `${file}.${execArgv.join(' ').replace(/[^A-Za-z0-9=.,_-]+/g, '_').slice(0, 100)}.cache`;
}

/** The id scripts/build-cli.mjs puts at the end of the bundle (a hash of its text), or null. */
function buildIdOf(source) {
  const m = /\/\/# vivarium-build=([0-9a-f]{16})\s*$/.exec(source.slice(-64));
  return m ? m[1] : null;
}

/**
 * Loads the bundled CLI like `require(file)` would, with V8's code cache when there is one for this
 * very build (the cache file starts with the bundle's build id and a newline).
 * Returns the module's exports ({ main(argv, io?) → Promise<exit code> }), the build id, and
 * createCache() for scripts/build-cli.mjs, which records the cache after exercising the code.
 * @param {string} file
 * @param {{ produceCache?: boolean }} [opts]
 */
function loadCli(file = BUNDLE, opts = {}) {
  // The bundle is ASCII (esbuild escapes everything else; scripts/build-cli.mjs checks): read as
  // latin1, V8 gets a one-byte string without a UTF-8 decode (~4x faster for these 2 MB).
  const source = fs.readFileSync(file, 'latin1');
  const buildId = buildIdOf(source);
  let cachedData;
  if (!opts.produceCache && buildId) {
    try {
      const cache = fs.readFileSync(cacheFileFor(file));
      if (cache.subarray(0, buildId.length + 1).toString('latin1') === `${buildId}\n`) cachedData = cache.subarray(buildId.length + 1);
    } catch {
      // No cache (a build without one): compile as usual.
    }
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  return { exports: mod.exports, buildId, createCache: () => script.createCachedData() };
}

module.exports = { loadCli, cacheFileFor, BUNDLE };

if (require.main === module) {
  if (!fs.existsSync(BUNDLE)) {
    process.stderr.write(`vivarium: not built yet. Run \`npm install\` (or \`npm run build\`) in ${path.dirname(__dirname)} first.\n`);
    process.exit(1);
  }
  loadCli()
    .exports.main(process.argv.slice(2))
    .then(
      (code) => {
        // Exit once stdout has drained, even if a library left a handle open.
        process.stdout.write('', () => process.exit(code));
      },
      (e) => {
        process.stderr.write(`vivarium: internal error: ${String(e && e.stack ? e.stack : e)}\n`);
        process.exitCode = 1;
      },
    );
}
