/**
 * zod settings for the `vivarium` command, imported first by main/cli/index.ts so that they hold
 * before any schema is built.
 *
 * `jitless`: zod 4 compiles a parser for each object schema with `new Function` the first time it
 * parses with it. That pays off over thousands of parses; a command parses each schema once or
 * twice, and the generated code is compiled from scratch in every process (V8's code cache for the
 * bundle cannot hold it). Measured interleaved (issue 7): `vivarium start` reached its QEMU spawn
 * ~7 ms sooner (median 129 -> 122 ms) and `vivarium list` on 20 VMs took ~11 ms less. Validation is
 * the same either way: zod runs the same checks, interpreted.
 */
import { z } from 'zod';

z.config({ jitless: true });
