// A deploy while a page is open: the page keeps its build, the server
// names the one it serves on every response (x-chartkey-build). Simulated
// by serving another version marker, without a second build.
import { test, expect } from '@playwright/test';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

test('a page from an older build says "Chartkey was updated" and a reload brings the new one', async ({ page }) => {
  await page.goto('/');
  const mine = await page.locator('meta[name="chartkey-build"]').getAttribute('content');
  expect(mine).toMatch(/^[0-9a-f]{16}$/);
  const head = await page.request.head('/');
  expect(head.headers()['x-chartkey-build']).toBe(mine);

  // The server now serves another build.
  await page.route('**/*', async (route) => {
    if (route.request().method() !== 'HEAD') return route.fallback();
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), 'x-chartkey-build': 'feedfacefeedface' } });
  });
  await page.getByRole('link', { name: 'Create an account' }).click();
  const banner = page.getByTestId('update-banner');
  await expect(banner).toContainText('Chartkey was updated. Reload to use the new version');
  await expect(banner).toHaveAttribute('role', 'alert');

  // After the reload the page is the server's build: no banner.
  await page.unroute('**/*');
  await banner.getByRole('button', { name: 'Reload' }).click();
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeVisible();
  const checked = page.waitForResponse((r) => r.request().method() === 'HEAD');
  await page.getByRole('link', { name: 'Sign in' }).click();
  expect((await checked).headers()['x-chartkey-build']).toBe(mine);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(banner).toHaveCount(0);
});
