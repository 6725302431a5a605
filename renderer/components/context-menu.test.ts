import { describe, expect, it } from 'vitest';
import { fitMenu } from './context-menu';

describe('fitMenu', () => {
  const view = { width: 800, height: 600 };
  const size = { width: 200, height: 150 };
  it('opens at the point when it fits', () => {
    expect(fitMenu({ x: 100, y: 100 }, size, view)).toEqual({ x: 100, y: 100 });
  });
  it('opens to the left of / above the point near the right or bottom edge', () => {
    expect(fitMenu({ x: 700, y: 100 }, size, view)).toEqual({ x: 500, y: 100 });
    expect(fitMenu({ x: 100, y: 550 }, size, view)).toEqual({ x: 100, y: 400 });
  });
  it('stays inside a window smaller than the menu would need', () => {
    expect(fitMenu({ x: 50, y: 50 }, { width: 300, height: 100 }, { width: 250, height: 400 })).toEqual({ x: 4, y: 50 });
  });
});
