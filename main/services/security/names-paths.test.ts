/**
 * Issue 8, items 4 (paths by the host's rules) and 5 (a name can never be mistaken for another VM).
 * The rules live on the contract's schemas; here they are tried through a real engine over a real
 * RPC connection (as every front end reaches it), so the field-level messages are the ones a person
 * sees.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VivariumError, type SerializedError } from '../../common/errors';
import { createRpcClient, type RpcClient } from '../../common/rpc/client';
import { createConnectionPair } from '../../common/rpc/memory-connection';
import { RpcServer } from '../../common/rpc/server';
import { isAbsoluteFor } from '../../common/contract/shared';
import { CreateVmSpec } from '../../common/contract/vms';
import { invisibleCharacter, readsAsVmId } from '../../common/models/vm-config';
import { createEngine, type Engine } from '../engine';
import { makeTestHome, type TestHome } from '../../test-support/home';

let t: TestHome;
let engine: Engine;
let client: RpcClient;

beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env });
  const [a, b] = createConnectionPair();
  new RpcServer(engine.services).serve(a);
  client = createRpcClient(b);
});

afterEach(async () => {
  client.dispose();
  await engine.dispose();
  await t.cleanup();
});

const spec = (name: string, extra: Record<string, unknown> = {}) => ({ name, accel: 'tcg' as const, memoryMiB: 64, cpus: 1, diskSizeBytes: 0, net: 'none' as const, display: 'none' as const, ...extra });

async function createError(name: string, extra: Record<string, unknown> = {}): Promise<VivariumError> {
  const e: unknown = await client.services.vms.create(spec(name, extra)).then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof VivariumError)) throw new Error(`create "${name}" was accepted`);
  return e;
}

/** Every message a front end can show for this error (the whole, and per field). */
function texts(e: VivariumError): string {
  const j: SerializedError = e.toJSON();
  return [j.message, ...(j.fields ?? []).map((f) => `${f.field}: ${f.message}`)].join(' | ');
}

describe('names that read as a VM id are refused', () => {
  it('refuses another VM\'s short id, its full id, and any other id spelling resolve() accepts, with a field message', async () => {
    const other = await client.services.vms.create(spec('first'));
    const short = other.id.slice(0, 8);
    for (const n of [short, short.toUpperCase(), other.id, other.id.slice(0, 13), '0123abcd', 'deadbeef-cafe-4', 'ｄｅａｄｂｅｅｆ']) {
      const e = await createError(n);
      expect(e.code, n).toBe('invalid-argument');
      expect(texts(e), n).toMatch(/name must not look like a VM id/i);
      expect(e.toJSON().fields?.some((f) => f.field === 'name'), n).toBe(true);
    }
    // `delete <short id>` therefore always means the VM with that id.
    expect((await client.services.vms.get(short)).id).toBe(other.id);
    // Names that only resemble hex stay allowed.
    for (const n of ['deadbee', 'cafe babe', 'decade-old', 'abcdefgh', '2024-01-01', 'facade12x', '0123456789abcdef0']) {
      expect(readsAsVmId(n), n).toBe(false);
    }
    expect((await client.services.vms.create(spec('decade-old'))).name).toBe('decade-old');
  });

  it('refuses renaming a VM to an id form', async () => {
    const a = await client.services.vms.create(spec('alpha'));
    const b = await client.services.vms.create(spec('beta'));
    const e: unknown = await client.services.vms.edit(a.id, { name: b.id.slice(0, 8) }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VivariumError);
    expect(texts(e as VivariumError)).toMatch(/name must not look like a VM id/i);
  });
});

describe('invisible and direction-changing characters are refused', () => {
  const cases: readonly [string, string][] = [
    ['web\u200Bserver', 'U+200B'], // zero-width space
    ['web\u200Dserver', 'U+200D'], // zero-width joiner
    ['\u202Egnp.exe', 'U+202E'], // right-to-left override
    ['db\u2066x\u2069', 'U+2066'], // left-to-right isolate
    ['a\u00ADb', 'U+00AD'], // soft hyphen
    ['b\uFEFFom', 'U+FEFF'],
    ['line\u2028sep', 'U+2028'],
    ['no\u00A0break', 'U+00A0'], // looks like a space
    ['filler\u3164', 'U+3164'], // Hangul filler: a "letter" that shows nothing
    ['tag\u{E0041}', 'U+E0041'],
  ];
  it('with a field message naming the character', async () => {
    for (const [name, cp] of cases) {
      expect(invisibleCharacter(name), JSON.stringify(name)).toBe(cp);
      const e = await createError(name);
      expect(texts(e).toLowerCase(), JSON.stringify(name)).toContain(`name must not contain invisible or text-direction characters (it contains ${cp.toLowerCase()})`);
    }
    expect(await client.services.vms.list()).toEqual([]);
  });

  it('keeps ordinary text of every script, spaces and emoji', () => {
    for (const n of ['café lab', 'Ubuntu 24.04 (test)', 'שרת', 'сервер', '数据库', 'ok ❤️', 'a  b']) {
      expect(invisibleCharacter(n), n).toBeNull();
      expect(CreateVmSpec.safeParse(spec(n)).success, n).toBe(true);
    }
  });
});

describe('paths follow the rules of the host that uses them', () => {
  it('on Linux, c:/boot/vmlinuz is not absolute: refused with a sentence', async () => {
    expect(process.platform).not.toBe('win32');
    for (const p of ['c:/boot/vmlinuz', 'C:\\boot\\vmlinuz', 'boot/vmlinuz', './vmlinuz', '~/vmlinuz']) {
      const e = await createError('paths', { kernel: p });
      expect(texts(e), p).toMatch(/must be an absolute path, starting with \//i);
    }
    for (const p of ['/boot/../etc/shadow', '/a/b/..', '/x\0y']) {
      const e = await createError('paths', { kernel: p });
      expect(texts(e), p).toMatch(/must not contain "\.\." segments|must not contain NUL/);
    }
  });

  it('on Windows, drive and UNC paths are absolute; /x, C:x and device paths are not', () => {
    for (const p of ['C:\\images\\a.iso', 'd:/a.iso', '\\\\server\\share\\a.iso']) expect(isAbsoluteFor(p, 'win32'), p).toBe(true);
    for (const p of ['/images/a.iso', 'C:a.iso', '\\a.iso', '\\\\?\\C:\\a.iso', '\\\\.\\PhysicalDrive0', 'a.iso']) expect(isAbsoluteFor(p, 'win32'), p).toBe(false);
    expect(isAbsoluteFor('/images/a.iso', 'posix')).toBe(true);
    expect(isAbsoluteFor('c:/x', 'posix')).toBe(false);
  });
});
