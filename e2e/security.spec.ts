import { WebSocket } from 'ws';
import { expect, test } from './fixtures';

/** Opens a WebSocket and resolves with the HTTP status of a refused upgrade, or 101. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', (e) => reject(e));
  });
}

test('requests without the token are refused', async ({ playwright, served }) => {
  const anon = await playwright.request.newContext();
  expect((await anon.get(`${served.origin!}/`)).status()).toBe(401);
  expect((await anon.get(`${served.origin!}/index.html`)).status()).toBe(401);
  expect((await anon.get(`${served.origin!}/?token=wrong`)).status()).toBe(401);
  await anon.dispose();
  const wsUrl = served.origin!.replace('http', 'ws') + '/rpc';
  expect(await upgradeStatus(wsUrl, { Origin: served.origin! })).toBe(401);
});

test('the token becomes an HttpOnly SameSite=Strict cookie; foreign Origins are refused', async ({ playwright, served }) => {
  const ctx = await playwright.request.newContext();
  const res = await ctx.get(served.url!, { maxRedirects: 0 });
  expect(res.status()).toBe(302);
  const cookie = res.headers()['set-cookie'] ?? '';
  expect(cookie).toMatch(/HttpOnly/i);
  expect(cookie).toMatch(/SameSite=Strict/i);
  expect(res.headers()['content-security-policy']).toContain("script-src 'self'");
  const page = await ctx.get(`${served.origin!}/`);
  expect(page.status()).toBe(200);
  await ctx.dispose();

  const token = new URL(served.url!).searchParams.get('token')!;
  const wsUrl = served.origin!.replace('http', 'ws') + '/rpc';
  const withCookie = { Cookie: `vivarium_token_${new URL(served.url!).port}=${token}` };
  expect(await upgradeStatus(wsUrl, { ...withCookie, Origin: served.origin! })).toBe(101);
  expect(await upgradeStatus(wsUrl, { ...withCookie, Origin: 'https://evil.example' })).toBe(403);
  expect(await upgradeStatus(wsUrl, { ...withCookie })).toBe(403);
});
