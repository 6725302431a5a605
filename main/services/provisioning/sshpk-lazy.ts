/**
 * sshpk (https://github.com/TritonDataCenter/node-sshpk), loaded on first use. Its module graph
 * (assert-plus, node:assert, node:stream, node:crypto, its key formats) cost a short CLI command
 * such as `vivarium start` ~10 ms of start-up (bench/cli.bench.mjs, issue 7) though only sandbox
 * work parses keys. A synchronous `require` keeps the callers synchronous; the CLI bundler
 * (esbuild) turns it into a call of the bundled module, run the first time only.
 */
import type Sshpk from 'sshpk';

let loaded: typeof Sshpk | undefined;

/** The sshpk module (the same object `import sshpk from 'sshpk'` gives). */
export function sshpk(): typeof Sshpk {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deliberately lazy, see above
  loaded ??= require('sshpk') as typeof Sshpk;
  return loaded;
}
