import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { IPC_CHANNEL } from '../common/rpc/protocol';

// Electron's binary is not available here, so the preload can't run; what can be checked is what
// decides whether it loads at all in a sandboxed window: what it requires at runtime.
const source = fs.readFileSync(path.join(__dirname, 'preload.ts'), 'utf8');
const compiled = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
}).outputText;

describe('preload', () => {
  it("requires nothing but 'electron' (a sandboxed preload can't load project modules)", () => {
    const requires = [...compiled.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
    expect(requires).toEqual(['electron']);
  });

  it('uses the same channel as the main-process transport', () => {
    expect(source).toContain(`const CHANNEL = '${IPC_CHANNEL}';`);
  });

  it('exposes one generic bridge, not one function per method', () => {
    expect([...compiled.matchAll(/exposeInMainWorld\(/g)]).toHaveLength(1);
    expect(compiled).not.toMatch(/\b(list|create|start|stop)\s*\(/);
  });
});
