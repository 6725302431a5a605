import { describe, expect, it } from 'vitest';
import { gridMove, isReleaseCombo, type KeyLike } from './keys';

const key = (p: Partial<KeyLike>): KeyLike => ({ key: '', code: '', ctrlKey: false, altKey: false, metaKey: false, shiftKey: false, ...p });

describe('isReleaseCombo', () => {
  it('matches Ctrl+Alt+G by code or key', () => {
    expect(isReleaseCombo(key({ ctrlKey: true, altKey: true, code: 'KeyG', key: 'g' }))).toBe(true);
    expect(isReleaseCombo(key({ ctrlKey: true, altKey: true, key: 'G' }))).toBe(true);
    // AZERTY or Dvorak: the physical G key still works.
    expect(isReleaseCombo(key({ ctrlKey: true, altKey: true, code: 'KeyG', key: 'i' }))).toBe(true);
  });
  it('ignores other combos', () => {
    expect(isReleaseCombo(key({ ctrlKey: true, code: 'KeyG', key: 'g' }))).toBe(false);
    expect(isReleaseCombo(key({ altKey: true, code: 'KeyG', key: 'g' }))).toBe(false);
    expect(isReleaseCombo(key({ ctrlKey: true, altKey: true, shiftKey: true, code: 'KeyG', key: 'G' }))).toBe(false);
    expect(isReleaseCombo(key({ ctrlKey: true, altKey: true, code: 'Delete', key: 'Delete' }))).toBe(false);
  });
});

describe('gridMove', () => {
  // 7 items, 3 columns:  0 1 2 / 3 4 5 / 6
  it('moves along rows and columns', () => {
    expect(gridMove('ArrowRight', 0, 7, 3)).toBe(1);
    expect(gridMove('ArrowLeft', 3, 7, 3)).toBe(2);
    expect(gridMove('ArrowDown', 1, 7, 3)).toBe(4);
    expect(gridMove('ArrowUp', 4, 7, 3)).toBe(1);
  });
  it('stops at the edges', () => {
    expect(gridMove('ArrowLeft', 0, 7, 3)).toBe(0);
    expect(gridMove('ArrowRight', 6, 7, 3)).toBe(6);
    expect(gridMove('ArrowDown', 5, 7, 3)).toBe(6);
    expect(gridMove('ArrowDown', 6, 7, 3)).toBe(6);
    expect(gridMove('ArrowDown', 4, 6, 3)).toBe(4);
    expect(gridMove('ArrowUp', 2, 7, 3)).toBe(2);
  });
  it('jumps with Home, End and pages', () => {
    expect(gridMove('Home', 5, 7, 3)).toBe(0);
    expect(gridMove('End', 0, 7, 3)).toBe(6);
    expect(gridMove('PageDown', 0, 7, 1)).toBe(3);
    expect(gridMove('PageUp', 1, 7, 1)).toBe(0);
  });
  it('ignores other keys and empty grids', () => {
    expect(gridMove('a', 0, 7, 3)).toBeNull();
    expect(gridMove('ArrowDown', 0, 0, 3)).toBeNull();
    expect(gridMove('ArrowDown', 0, 2, 0)).toBe(1);
  });
});
