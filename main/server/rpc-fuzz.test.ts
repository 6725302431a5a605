/**
 * Issue 8, item 8: a property-based fuzz of the RPC surface (fast-check), bounded in time, against a
 * real `vivarium serve` engine in its own process (bundled from the sources with esbuild, as the
 * build does) over its real transports — the WebSocket /rpc and the unix engine socket of the CLI —
 * with a private VIVARIUM_HOME. Its own process, so that the second client's latency is the engine's
 * alone and a crash is a dead process.
 *
 * Batches of random messages: method and service names from the contract and made up, argument
 * shapes built from the contract's field names with values drawn from path-traversal variants,
 * option-injection strings, regexes that backtrack, look-alike names and plain random JSON; subs and
 * unsubs; junk envelopes; and, on throw-away connections, binary and oversized frames.
 *
 * Properties: every call or sub the engine can answer is answered, well-formed, within 10 s; a
 * second client's `vms.list` round trip never takes 1 s or more; nothing appears outside the
 * library (a marker in every injected path is searched for, a sentinel folder of "outside" files
 * must be unchanged, /etc/passwd untouched); everything written inside is private.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { contract } from '../common/contract';
import { ErrorCode } from '../common/errors';
import { createRpcClient, type RpcClient } from '../common/rpc/client';
import { Layout } from '../services/paths';
import { makeTestHome, type TestHome } from '../test-support/home';
import { connectUnix } from './transports/unix-socket';

/** Wall-clock budget for the fuzzing itself (the issue allows 20 s for the whole test). */
const FUZZ_MS = 12_000;
const REPLY_TIMEOUT_MS = 10_000;
/** Calls that legitimately wait for something outside the engine (a guest's output, a download). */
const LONG_BY_DESIGN = new Set(['vms.start', 'vms.stop', 'media.wait', 'media.download', 'media.resume']);
const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

const MARK = `PWN${process.pid}x`;

let t: TestHome;
/** The engine under test: its process, and what it printed. */
let hosted: { readonly origin: string; readonly token: string; readonly child: ChildProcess; stderr: string; exit: number | null };
let buildDir: string;
let outside: string;
let outsideBefore: string;
let passwdBefore: string;
let second: RpcClient;
let staticDir: string;

/** Every file below `dir` with its mode, size, mtime and content hash (links as links). */
function snapshot(dir: string, o: { withMtime?: boolean } = {}): string {
  const out: string[] = [];
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    let content = st.isFile() ? fs.readFileSync(p, 'latin1') : '';
    // The second-user tests' own short-lived accounts (vivperm<pid>, vivsec<pid>) are theirs, not a fuzz hit.
    if (o.withMtime === false) content = content.replace(/^viv(?:perm|sec)\d+:.*\n/gm, '');
    const hash = st.isFile() ? createHash('sha256').update(content, 'latin1').digest('hex') : st.isSymbolicLink() ? fs.readlinkSync(p) : '';
    out.push(`${path.relative(dir, p)} ${st.mode.toString(8)} ${o.withMtime === false ? '' : `${st.size} ${st.mtimeMs}`} ${hash}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n));
  };
  walk(dir);
  return out.join('\n');
}

/** Entries named with the marker anywhere we can look cheaply (depth-limited), outside the test's own folders. */
function markerHits(): string[] {
  const hits: string[] = [];
  const own = [t.home, t.runtimeDir];
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      if (own.some((o) => p === o || p.startsWith(`${o}${path.sep}`))) continue;
      if (n.includes(MARK)) hits.push(p);
      if (depth > 0) {
        try {
          if (fs.lstatSync(p).isDirectory()) walk(p, depth - 1);
        } catch {
          // vanished
        }
      }
    }
  };
  for (const root of ['/tmp', os.tmpdir(), '/', os.homedir(), process.cwd(), '/etc', '/var/tmp', '/dev/shm']) walk(root, 0);
  walk(outside, 5);
  return [...new Set(hits)];
}

// ---- arbitraries -----------------------------------------------------------------------------------

function stringPool(): string[] {
  return [
    '', ' ', 'alpha', 'fuzzvm', 'Fuzz VM', 'deadbeef', '00000000-0000-4000-8000-000000000000', 'tcg', 'kvm', 'hvf', 'auto', 'uefi', 'bios',
    'user', 'none', 'vnc', 'serial', 'tcp', 'udp', 'x86_64', 'aarch64', 'ret', 'ctrl', 'alt', 'delete',
    // path traversal
    `../../../../tmp/${MARK}`, `/tmp/${MARK}`, `/tmp/${MARK}/../../etc/passwd`, `${outside}/disk.qcow2`, `${outside}/config.json`,
    `${outside}/vmlinuz`, `${outside}/../${MARK}`, `${outside}/link-to-etc/passwd`, `${outside}/${MARK}.qcow2`, '/etc/passwd', '/etc/shadow',
    '/proc/self/environ', '/proc/self/mem', '/dev/null', '/dev/zero', '/', '.', '..', `..\\..\\${MARK}`, `C:\\${MARK}`, 'c:/boot/vmlinuz',
    `%2e%2e%2f${MARK}`, `file:///etc/passwd`, `\\\\server\\share\\${MARK}`, `/tmp/${MARK}\u0000.qcow2`, `vms/../../${MARK}`, `~/${MARK}`,
    // option / shell injection
    `-drive file=/tmp/${MARK}`, `,file=/tmp/${MARK}`, `if=none,file=/tmp/${MARK},format=raw`, `x,,file=/tmp/${MARK}`, `$(touch /tmp/${MARK})`,
    `\`touch /tmp/${MARK}\``, `; touch /tmp/${MARK}`, `' ; touch /tmp/${MARK} ; '`, `console=ttyS0 -qmp unix:/tmp/${MARK},server=on`,
    `-object memory-backend-file,id=m,mem-path=/tmp/${MARK}`, `\n-serial file:/tmp/${MARK}`, `--${MARK}`, `-${MARK}`, `a\r\nb`,
    // patterns that backtrack, sizes, look-alikes
    '(a+)+Q#', '(a|aa)*$', '^(\\w+\\s?)*$', '.*'.repeat(60), 'a'.repeat(5000), '\u202Eexe.txt', 'x\u200By', 'ａｌｐｈａ',
    '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  ];
}

const FIELDS = [
  'name', 'arch', 'cpus', 'memoryMiB', 'accel', 'firmware', 'diskSizeBytes', 'diskPath', 'iso', 'kernel', 'initrd', 'append', 'net', 'forwards',
  'display', 'os', 'force', 'keepDisks', 'timeoutSec', 'waitSerial', 'maxBytes', 'history', 'query', 'id', 'url', 'arch', 'protocol', 'hostPort',
  'guestPort', 'extraArgs', 'machine', 'disks', 'path', 'format', 'file', '__proto__', 'constructor',
];

type Msg =
  | { readonly kind: 'json'; readonly value: unknown; readonly expects: string | null }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'closer'; readonly binary: boolean };

function arbitraries(): fc.Arbitrary<Msg> {
  const pool = stringPool();
  const services = Object.keys(contract);
  const methods = Object.entries(contract).flatMap(([s, e]) => Object.keys(e.methods).map((m) => [s, m] as const));
  const events = Object.entries(contract).flatMap(([s, e]) => e.events.map((ev) => [s, ev] as const));
  const str = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }, {
    weight: 1,
    arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }),
  });
  const num = fc.oneof(fc.integer({ min: -2, max: 70_000 }), fc.constantFrom(0, 1, 2, 64, 128, 256, 1e9, 2 ** 53, -1, 0.5, Number.MAX_SAFE_INTEGER), fc.double());
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      str,
      num,
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom(...FIELDS), tie('value'), { maxKeys: 6 }),
    ),
  }));
  const id = fc.integer({ min: 0, max: 2 ** 31 });
  const call = fc.record({
    sm: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...methods) }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...services, 'nope', '__proto__'), str) }),
    a: fc.array(value, { maxLength: 4 }),
    id,
  });
  const sub = fc.record({ se: fc.oneof(fc.constantFrom(...events), fc.tuple(fc.constantFrom(...services), str)), id });
  // Mostly-valid creates and edits, so that VMs exist and the methods that act on one are reached
  // with injected values in the fields that end up on QEMU's command line.
  const injected = fc.constantFrom(...pool.filter((x) => x.includes(MARK) || x.includes('/') || x.startsWith('-') || x.includes(',')));
  const vmName = fc.constantFrom('fuzzvm', 'fuzz two', 'Fuzz-3', 'alpha');
  const createSpec = fc.record(
    {
      name: vmName,
      accel: fc.constant('tcg'),
      memoryMiB: fc.constantFrom(32, 64),
      cpus: fc.constant(1),
      diskSizeBytes: fc.constantFrom(0, 1024 * 1024),
      display: fc.constantFrom('none', 'vnc'),
      net: fc.constantFrom('none', 'user'),
      kernel: fc.oneof(injected, fc.constant(`${outside}/vmlinuz`)),
      append: fc.oneof(injected, str),
      iso: injected,
      diskPath: fc.oneof(injected, fc.constant(`${outside}/disk.qcow2`)),
      os: str,
    },
    { requiredKeys: ['name', 'accel', 'memoryMiB', 'cpus', 'display', 'net'] },
  );
  const onVm = fc.record({
    m: fc.constantFrom('get', 'start', 'stop', 'delete', 'edit', 'serialLog', 'screenshot', 'pause', 'resume', 'reset', 'sendKeys'),
    ref: fc.oneof(vmName, str),
    opt: fc.oneof(fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 3 }), createSpec.map(({ name: _n, ...rest }) => rest), fc.constant({})),
    id,
  });
  return fc.oneof(
    { weight: 12, arbitrary: call.map((c): Msg => ({ kind: 'json', value: { t: 'call', id: c.id, s: c.sm[0], m: c.sm[1], a: c.a }, expects: `${c.sm[0]}.${c.sm[1]}` })) },
    { weight: 3, arbitrary: fc.tuple(createSpec, id).map(([c, i]): Msg => ({ kind: 'json', value: { t: 'call', id: i, s: 'vms', m: 'create', a: [c] }, expects: 'vms.create' })) },
    {
      weight: 6,
      arbitrary: onVm.map((c): Msg => ({ kind: 'json', value: { t: 'call', id: c.id, s: 'vms', m: c.m, a: c.m === 'sendKeys' ? [c.ref, ['ctrl', 'alt', 'delete']] : [c.ref, c.opt] }, expects: `vms.${c.m}` })),
    },
    { weight: 2, arbitrary: sub.map((s): Msg => ({ kind: 'json', value: { t: 'sub', id: s.id, s: s.se[0], ev: s.se[1] }, expects: 'sub' })) },
    { weight: 1, arbitrary: id.map((i): Msg => ({ kind: 'json', value: { t: 'unsub', id: i }, expects: null })) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v): Msg => ({ kind: 'json', value: v, expects: null })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Msg>(
        { kind: 'text', text: 'not json' },
        { kind: 'text', text: '['.repeat(200_000) },
        { kind: 'text', text: '{"t":"call","id":1,"s":"vms","m":"list","a":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}' },
        { kind: 'text', text: '{"t":"result","id":1,"ok":true,"v":null}' },
        { kind: 'text', text: '{"t":"event","id":1,"v":{}}' },
        { kind: 'closer', binary: true },
        { kind: 'closer', binary: false },
      ),
    },
  );
}

// ---- transports ------------------------------------------------------------------------------------

interface Wire {
  send(text: string): void;
  /** Resolves with the reply to `id` (a result message), or null after `ms`. */
  reply(id: number, ms: number): Promise<Record<string, unknown> | null>;
  readonly closed: boolean;
  close(): void;
}

function tracker(): { onText: (text: string) => void; reply: Wire['reply'] } {
  const got = new Map<number, Record<string, unknown>>();
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  return {
    onText(text) {
      const m = JSON.parse(text) as Record<string, unknown>;
      if (m.t !== 'result' || typeof m.id !== 'number') return;
      const w = waiting.get(m.id);
      if (w) {
        waiting.delete(m.id);
        w(m);
      } else got.set(m.id, m);
    },
    reply(id, ms) {
      const have = got.get(id);
      if (have) {
        got.delete(id);
        return Promise.resolve(have);
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve(null);
        }, ms);
        waiting.set(id, (m) => {
          clearTimeout(timer);
          resolve(m);
        });
      });
    },
  };
}

async function wsWire(): Promise<Wire> {
  const base = hosted.origin;
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/rpc?token=${hosted.token}`, { origin: base, maxPayload: 64 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const tr = tracker();
  let closed = false;
  ws.on('message', (d: Buffer) => tr.onText(d.toString()));
  ws.on('close', () => (closed = true));
  ws.on('error', () => (closed = true));
  return {
    send: (text) => ws.readyState === WebSocket.OPEN && ws.send(text),
    reply: tr.reply,
    get closed() {
      return closed;
    },
    close: () => ws.terminate(),
  };
}

async function unixWire(): Promise<Wire> {
  const layout = Layout.fromEnv(t.env);
  const sock = net.connect(layout.engineSocket);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const tr = tracker();
  let closed = false;
  let buf = '';
  sock.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      tr.onText(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  sock.on('close', () => (closed = true));
  sock.on('error', () => (closed = true));
  return {
    send: (text) => void (!sock.destroyed && sock.write(`${text.replace(/\n/g, ' ')}\n`)),
    reply: tr.reply,
    get closed() {
      return closed;
    },
    close: () => sock.destroy(),
  };
}

/** A throw-away connection that gets a frame the engine must refuse by closing it. */
async function closerOn(kind: 'ws' | 'unix', binary: boolean): Promise<boolean> {
  if (kind === 'unix') {
    const w = await unixWire();
    w.send('x'.repeat(1024 * 1024 + 10)); // one line over MAX_REQUEST_BYTES
    const deadline = Date.now() + 2000;
    while (!w.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    w.close();
    return w.closed;
  }
  const base = hosted.origin;
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/rpc?token=${hosted.token}`, { origin: base });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const closed = new Promise<boolean>((resolve) => {
    ws.once('close', () => resolve(true));
    ws.once('error', () => resolve(true));
    setTimeout(() => resolve(false), 2000).unref();
  });
  if (binary) ws.send(Buffer.from([1, 2, 3]), { binary: true });
  else ws.send('y'.repeat(1024 * 1024 + 10));
  const ok = await closed;
  ws.terminate();
  return ok;
}

// ---- the test --------------------------------------------------------------------------------------

beforeAll(async () => {
  t = makeTestHome();
  staticDir = path.join(t.home, 'renderer');
  fs.mkdirSync(staticDir, { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html>');
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-outside-'));
  fs.writeFileSync(path.join(outside, 'disk.qcow2'), Buffer.alloc(64 * 1024, 7));
  fs.writeFileSync(path.join(outside, 'config.json'), '{"precious":true}');
  fs.writeFileSync(path.join(outside, 'vmlinuz'), 'not a kernel');
  fs.symlinkSync('/etc', path.join(outside, 'link-to-etc'));
  outsideBefore = snapshot(outside);
  // Content and mode only, without the second-user tests' accounts: those test files add and remove
  // a real user meanwhile (issue 8), which rewrites /etc/passwd with a new mtime.
  passwdBefore = snapshot('/etc/passwd', { withMtime: false });
  // Bundle the engine from the sources (the serve command and the stats worker beside it).
  const repo = path.resolve(__dirname, '..', '..');
  // Inside the repository, so the bundle finds resources/ (the OS catalog) as the built app does.
  fs.mkdirSync(path.join(repo, '.cache'), { recursive: true });
  buildDir = fs.mkdtempSync(path.join(repo, '.cache', 'fuzz-build-'));
  const entry = path.join(buildDir, 'entry.ts');
  fs.writeFileSync(
    entry,
    `import { runServe } from ${JSON.stringify(path.join(repo, 'main', 'server', 'serve'))};
     runServe({ port: 0, env: process.env, stdout: process.stdout, stderr: process.stderr, staticDir: process.argv[2] })
       .then((c) => process.exit(c), (e) => { console.error('FATAL', e); process.exit(70); });`,
  );
  const common: esbuild.BuildOptions = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['node-pty', 'systeminformation', 'electron'],
    logLevel: 'error',
    absWorkingDir: repo,
  };
  await Promise.all([
    esbuild.build({ ...common, entryPoints: [entry], outfile: path.join(buildDir, 'serve.js') }),
    esbuild.build({ ...common, entryPoints: [path.join(repo, 'main', 'services', 'stats', 'host-sampler-worker.ts')], outfile: path.join(buildDir, 'host-sampler-worker.js') }),
  ]);
  const profile = process.env.VIVARIUM_FUZZ_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.VIVARIUM_FUZZ_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, path.join(buildDir, 'serve.js'), staticDir], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'], cwd: buildDir });
  let stdout = '';
  const h = { origin: '', token: '', child, stderr: '', exit: null as number | null };
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (h.stderr += d.toString()));
  child.on('exit', (code, signal) => (h.exit = code ?? (signal ? 128 : -1)));
  const deadline = Date.now() + 20_000;
  while (!stdout.includes('\n')) {
    if (h.exit !== null || Date.now() > deadline) throw new Error(`the engine did not start (${h.exit ?? 'timeout'}): ${h.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const url = new URL(stdout.split('\n')[0]!);
  hosted = { ...h, origin: url.origin, token: url.searchParams.get('token')! };
  child.on('exit', (code, signal) => (hosted.exit = code ?? (signal ? 128 : -1)));
  child.stderr!.on('data', (d: Buffer) => (hosted.stderr += d.toString()));
  second = createRpcClient(await connectUnix(Layout.fromEnv(t.env).engineSocket));
});

afterAll(async () => {
  second?.dispose();
  if (hosted && hosted.exit === null) {
    const gone = new Promise((r) => hosted.child.once('exit', r));
    hosted.child.kill('SIGTERM');
    await gone;
  }
  await t?.cleanup();
  fs.rmSync(outside, { recursive: true, force: true });
  fs.rmSync(buildDir, { recursive: true, force: true });
});

describe('RPC fuzz (fast-check) over the real WebSocket and unix transports', () => {
  it('never crashes, never stalls a second client for 1 s, never touches anything outside the library', async () => {
    // Warm-up: the engine's first calls load modules and probe the host (qemu -version…) once; the
    // stalls this test looks for are the ones input can cause at any time, not a cold start.
    await second.services.host.doctor();
    await second.services.vms.list();
    await second.services.vms.create({ name: '' }).catch(() => {});
    await second.services.media.catalog({}).catch(() => {});
    const started0 = performance.now();
    const crashes: unknown[] = [];
    const onCrash = (e: unknown): void => void crashes.push(e);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);

    // The second client: a plain `vms.list` every 50 ms, timed.
    // Also a call refused by argument validation, answered without touching any VM: its latency is
    // the engine's event loop alone.
    //
    // The machine is shared (2 cores, other test files run TCG guests meanwhile), so a round trip
    // can be slow because nobody got the CPU, not because the engine stalled. This process's own
    // timer lateness over the same interval measures that starvation (a stalled engine — a
    // backtracking regex, a sync walk — does not make another process's timers late), and the
    // engine's share of a round trip is its latency minus the starvation seen meanwhile.
    const lateness: { at: number; late: number }[] = [];
    let expected = performance.now() + 10;
    const ticker = setInterval(() => {
      const now = performance.now();
      lateness.push({ at: now, late: Math.max(0, now - expected) });
      expected = now + 10;
    }, 10);
    const starvation = (from: number, to: number): number =>
      lateness.reduce((m, l) => (l.at >= from && l.at <= to + 20 ? Math.max(m, l.late) : m), 0);
    let worstMs = 0;
    let worstEngineMs = 0;
    let worstLoopMs = 0;
    let probes = 0;
    let probing = true;
    const slow: string[] = [];
    const prober = (async () => {
      while (probing) {
        const t0 = performance.now();
        await second.services.vms.list();
        const t1 = performance.now();
        await second.services.vms.get('').catch(() => {});
        const t2 = performance.now();
        worstMs = Math.max(worstMs, t1 - t0);
        worstLoopMs = Math.max(worstLoopMs, t2 - t1);
        // Measured once the interval's ticks are in.
        setTimeout(() => {
          const own = Math.max(0, t1 - t0 - starvation(t0, t1));
          worstEngineMs = Math.max(worstEngineMs, own);
          if (t1 - t0 > 300) slow.push(`list ${Math.round(t1 - t0)} ms (host starvation ${Math.round(starvation(t0, t1))} ms) at +${Math.round(t0 - started0)} ms`);
        }, 40);
        probes++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const stats = { messages: 0, batches: 0, answered: 0, internal: [] as string[], unanswered: [] as string[], closers: 0, refusedClosers: 0 };
    const wires: Record<'ws' | 'unix', Wire | null> = { ws: null, unix: null };
    const wireFor = async (kind: 'ws' | 'unix'): Promise<Wire> => {
      const w = wires[kind];
      if (w && !w.closed) return w;
      wires[kind] = kind === 'ws' ? await wsWire() : await unixWire();
      return wires[kind]!;
    };
    let nextId = 1;
    const started = Date.now();

    await fc.assert(
      fc.asyncProperty(fc.constantFrom<'ws' | 'unix'>('ws', 'unix'), fc.array(arbitraries(), { minLength: 1, maxLength: 20 }), async (kind, batch) => {
        stats.batches++;
        const wire = await wireFor(kind);
        const pending: { id: number; what: string }[] = [];
        for (const m of batch) {
          stats.messages++;
          if (m.kind === 'closer') {
            stats.closers++;
            if (await closerOn(kind, m.binary)) stats.refusedClosers++;
            continue;
          }
          if (m.kind === 'text') {
            wire.send(m.text);
            continue;
          }
          let value = m.value;
          if (m.expects !== null && typeof value === 'object' && value !== null) {
            // Unique ids per connection, so every answer can be matched to its question.
            const id = nextId++;
            value = { ...value, id };
            if (!LONG_BY_DESIGN.has(m.expects)) pending.push({ id, what: m.expects });
          }
          wire.send(JSON.stringify(value));
        }
        for (const p of pending) {
          const r = await wire.reply(p.id, REPLY_TIMEOUT_MS);
          if (r === null) {
            stats.unanswered.push(p.what);
            continue;
          }
          stats.answered++;
          expect(r.t).toBe('result');
          if (r.ok === false) {
            const e = r.e as { code?: unknown; message?: unknown };
            expect(KNOWN_CODES.has(String(e.code)), JSON.stringify(e)).toBe(true);
            expect(typeof e.message).toBe('string');
            if (e.code === ErrorCode.Internal) stats.internal.push(`${p.what}: ${String(e.message)}`);
          }
        }
        expect(stats.unanswered).toEqual([]);
        expect(crashes).toEqual([]);
        expect(hosted.exit, hosted.stderr).toBeNull();
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: FUZZ_MS, markInterruptAsFailure: false, seed: Number(process.env.VIVARIUM_FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );

    probing = false;
    await prober;
    await new Promise((r) => setTimeout(r, 60));
    clearInterval(ticker);
    const worstStarvation = lateness.reduce((m, l) => Math.max(m, l.late), 0);
    for (const w of Object.values(wires)) w?.close();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);

    // The engine still answers everyone.
    expect(Array.isArray(await second.services.vms.list())).toBe(true);
    const fresh = await wsWire();
    fresh.send(JSON.stringify({ t: 'call', id: 1, s: 'vms', m: 'list', a: [] }));
    expect((await fresh.reply(1, 5000))?.ok).toBe(true);
    fresh.close();

    const hits = markerHits();
    // Everything the engine wrote inside the library and runtime folder is private.
    const loose: string[] = [];
    const walk = (p: string): void => {
      const st = fs.lstatSync(p);
      if (!st.isSymbolicLink() && (st.mode & 0o077) !== 0 && p !== t.runtimeDir && !p.startsWith(staticDir)) loose.push(`${p} ${(st.mode & 0o777).toString(8)}`);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
    };
    walk(t.home);
    walk(Layout.fromEnv(t.env).runtimeRoot);

    const summary = {
      seconds: Math.round((Date.now() - started) / 100) / 10,
      messagesFuzzed: stats.messages,
      batches: stats.batches,
      callsAnswered: stats.answered,
      crashes: crashes.length + (hosted.exit === null ? 0 : 1),
      internalErrors: stats.internal.length,
      worstSecondClientMs: Math.round(worstMs * 10) / 10,
      worstSecondClientEngineShareMs: Math.round(worstEngineMs * 10) / 10,
      worstValidationRoundTripMs: Math.round(worstLoopMs * 10) / 10,
      worstHostStarvationMs: Math.round(worstStarvation),
      secondClientProbes: probes,
      closersRefused: `${stats.refusedClosers}/${stats.closers}`,
      vmsCreated: (await second.services.vms.list()).length,
      outsideHits: hits.length,
    };
    console.log(`rpc fuzz: ${JSON.stringify(summary)}`);
    if (slow.length) console.log(`rpc fuzz slow list calls: ${JSON.stringify(slow.slice(0, 10))}`);
    if (stats.internal.length) console.log(`rpc fuzz internal errors (first 5): ${JSON.stringify(stats.internal.slice(0, 5))}`);

    expect(crashes).toEqual([]);
    expect(hosted.exit, hosted.stderr).toBeNull();
    expect(hosted.stderr).not.toMatch(/FATAL|Uncaught|TypeError|RangeError|ReferenceError/);
    expect(stats.messages).toBeGreaterThan(500);
    expect(worstEngineMs).toBeLessThan(1000);
    expect(stats.refusedClosers).toBe(stats.closers);
    expect(hits).toEqual([]);
    expect(snapshot(outside)).toBe(outsideBefore);
    expect(snapshot('/etc/passwd', { withMtime: false })).toBe(passwdBefore);
    expect(loose).toEqual([]);
  }, 60_000);
});
