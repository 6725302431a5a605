import { describe, expect, it } from 'vitest';
import { ErrorCode, VivariumError } from '../../main/common/errors';
import { errorMessage } from './errors';

describe('errorMessage', () => {
  it('shows a VivariumError as its sentence', () => {
    expect(errorMessage(new VivariumError(ErrorCode.InvalidState, 'The VM is already running.'))).toBe('The VM is already running.');
  });
  it('keeps only the first line of other errors, never a stack', () => {
    const e = new Error('socket closed\n    at foo (bar.js:1:1)');
    expect(errorMessage(e)).toBe('socket closed');
    expect(errorMessage({ code: 'busy', message: 'Busy.' })).toBe('Busy.');
    expect(errorMessage('plain text')).toBe('plain text');
  });
  it('has a fallback sentence for nothing useful', () => {
    expect(errorMessage(undefined)).toMatch(/^Something went wrong\./);
    expect(errorMessage({ message: '' })).toMatch(/^Something went wrong\./);
  });
});
