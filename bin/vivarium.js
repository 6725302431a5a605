#!/usr/bin/env node
'use strict';
// The `vivarium` command. The TypeScript sources are compiled to out/ by `npm install` (prepare) or
// `npm run build`.
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'out', 'main', 'cli', 'index.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('vivarium: not built yet. Run `npm install` (or `npm run build`) in ' + path.dirname(__dirname) + ' first.\n');
  process.exit(1);
}
require(entry)
  .main(process.argv.slice(2))
  .then(
    (code) => {
      // Exit once stdout has drained, even if a library left a handle open.
      process.stdout.write('', () => process.exit(code));
    },
    (e) => {
      process.stderr.write('vivarium: internal error: ' + String(e && e.stack ? e.stack : e) + '\n');
      process.exitCode = 1;
    },
  );
