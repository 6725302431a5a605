import { describe, expect, it } from 'vitest';
import { streamUrlForPage } from './stream-url';

describe('streamUrlForPage', () => {
  it('follows the name the page was reached by', () => {
    expect(streamUrlForPage('ws://127.0.0.1:8780/streams/abc', { protocol: 'http:', host: 'my-box:8780', port: '8780' })).toBe('ws://my-box:8780/streams/abc');
  });
  it('leaves other servers and the Electron page alone', () => {
    expect(streamUrlForPage('ws://127.0.0.1:9000/streams/abc', { protocol: 'http:', host: 'my-box:8780', port: '8780' })).toBe('ws://127.0.0.1:9000/streams/abc');
    expect(streamUrlForPage('ws://127.0.0.1:9000/streams/abc', { protocol: 'app:', host: 'vivarium', port: '' })).toBe('ws://127.0.0.1:9000/streams/abc');
  });
});
