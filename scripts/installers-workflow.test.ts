/**
 * The installers workflow (.github/workflows/installers.yml) asks only for runner images GitHub
 * still provides, covers the four installer legs the issue names, and drafts a release from them.
 *
 * Runner labels: GitHub docs "GitHub-hosted runners" (standard runners table). macos-13 was retired
 * on 2025-12-04 (actions/runner-images#13046, changelog 2025-09-19); a job asking for a retired
 * label never gets a runner, and a `needs:` on it then skips the release.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const WORKFLOW = path.resolve(__dirname, '..', '.github', 'workflows', 'installers.yml');

/** Labels GitHub serves today, with the CPU each one runs on. */
const CURRENT_RUNNERS: Readonly<Record<string, 'x64' | 'arm64'>> = {
  'macos-14': 'arm64',
  'macos-15': 'arm64',
  'macos-latest': 'arm64',
  'macos-15-intel': 'x64',
  'ubuntu-22.04': 'x64',
  'ubuntu-24.04': 'x64',
  'ubuntu-latest': 'x64',
  'windows-2022': 'x64',
  'windows-2025': 'x64',
  'windows-latest': 'x64',
};

interface Leg {
  readonly os: string;
  readonly name: string;
  readonly args: string;
}

const wf = parse(fs.readFileSync(WORKFLOW, 'utf8')) as {
  on: { push: { tags: string[] } };
  jobs: { dist: { strategy: { matrix: { include: Leg[] } } }; release: { needs: string; if: string; 'runs-on': string } };
};

describe('installers workflow', () => {
  const legs = wf.jobs.dist.strategy.matrix.include;

  it('runs each leg on a runner image GitHub still provides (no retired macos-13)', () => {
    for (const leg of legs) expect(Object.keys(CURRENT_RUNNERS), `${leg.name} runs on ${leg.os}`).toContain(leg.os);
    expect(legs.map((l) => l.os)).not.toContain('macos-13');
    expect(Object.keys(CURRENT_RUNNERS)).toContain(wf.jobs.release['runs-on']);
  });

  it('builds macOS on a Mac of the arch it targets, plus Linux and Windows', () => {
    const mac = legs.filter((l) => l.args.includes('--mac'));
    expect(mac.map((l) => [CURRENT_RUNNERS[l.os], l.args.includes('--arm64') ? 'arm64' : 'x64']).sort()).toEqual([
      ['arm64', 'arm64'],
      ['x64', 'x64'],
    ]);
    expect(legs.some((l) => l.args.includes('--linux') && l.os.startsWith('ubuntu-'))).toBe(true);
    expect(legs.some((l) => l.args.includes('--win') && l.os.startsWith('windows-'))).toBe(true);
  });

  it('drafts the release on a tag even when one leg failed (not when the run was cancelled)', () => {
    expect(wf.on.push.tags).toEqual(['v*']);
    expect(wf.jobs.release.needs).toBe('dist');
    expect(wf.jobs.release.if).toContain('!cancelled()');
    expect(wf.jobs.release.if).toContain("startsWith(github.ref, 'refs/tags/')");
  });
});
