/** The Electron security gate's verdict logic (the scan itself runs in `npm test`'s own step). */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { ANSWERED, judge } from './electronegativity.mjs';

const finding = (over: object) => ({ check: 'X', severity: 'HIGH', confidence: 'FIRM', file: 'main/app/a.ts', line: 1, sample: 'code', description: 'd', ...over });

describe('electronegativity gate', () => {
  it('fails on an unanswered high or medium finding, ignores low ones', () => {
    const a = (ANSWERED as { check: string; file: string; sample: string }[])[0]!;
    const answered = finding({ check: a.check, file: a.file, sample: `  ${a.sample}{` });
    const others = (ANSWERED as { check: string; file: string; sample: string }[]).slice(1).map((x) => finding({ check: x.check, file: x.file, sample: x.sample }));
    expect(judge([answered, ...others]).open).toEqual([]);
    expect(judge([answered, ...others]).stale).toEqual([]);
    const unanswered = finding({ check: 'NODE_INTEGRATION_JS_CHECK' });
    expect(judge([answered, ...others, unanswered]).open).toEqual([unanswered]);
    expect(judge([answered, ...others, finding({ severity: 'MEDIUM', check: 'Y' })]).open).toHaveLength(1);
    expect(judge([answered, ...others, finding({ severity: 'LOW', check: 'Y' })]).open).toHaveLength(0);
    // The same check in another file is not covered by an answer.
    expect(judge([answered, ...others, finding({ check: a.check, file: 'renderer/x.ts', sample: a.sample })]).open).toHaveLength(1);
  });

  it('reports answers that match nothing any more', () => {
    expect(judge([]).stale).toHaveLength((ANSWERED as unknown[]).length);
  });
});
