// A deploy while a page is open: the page keeps its build, the server
// names the one it serves on every response (x-chartkey-build). Simulated
// by serving another version marker, without a second build.
import { test, expect, type Page } from '@playwright/test';
import { nav, newAccount, signOut } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

/** From now on the server names another build (as after a deploy). */
async function serveAnotherBuild(page: Page) {
  await page.route('**/*', async (route) => {
    if (route.request().method() !== 'HEAD') return route.fallback();
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), 'x-chartkey-build': 'feedfacefeedface' } });
  });
}

test('a page from an older build says "Chartkey was updated" and a reload brings the new one', async ({ page }) => {
  await page.goto('/');
  const mine = await page.locator('meta[name="chartkey-build"]').getAttribute('content');
  expect(mine).toMatch(/^[0-9a-f]{16}$/);
  const head = await page.request.head('/');
  expect(head.headers()['x-chartkey-build']).toBe(mine);

  // The server now serves another build.
  await serveAnotherBuild(page);
  await page.getByRole('link', { name: 'Create an account' }).click();
  const banner = page.getByTestId('update-banner');
  await expect(banner).toContainText('Chartkey was updated. Reload to use the new version');
  await expect(banner).toHaveAttribute('role', 'alert');

  // After the reload the page is the server's build: no banner.
  await page.unrouteAll({ behavior: 'wait' });
  await banner.getByRole('button', { name: 'Reload' }).click();
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeVisible();
  const checked = page.waitForResponse((r) => r.request().method() === 'HEAD');
  await page.getByRole('link', { name: 'Sign in' }).click();
  expect((await checked).headers()['x-chartkey-build']).toBe(mine);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(banner).toHaveCount(0);
});

/** Requests for the portal's files (the module the shell loads after sign-in). */
async function portalFiles(page: Page): Promise<(url: URL) => boolean> {
  const glue = await page.locator('meta[name="chartkey-app"]').getAttribute('content');
  expect(glue).toMatch(/^\/chartkey-app-[0-9a-f]{16}\/chartkey-app\.js$/);
  const dir = glue!.replace(/[^/]*$/, '');
  return (url: URL) => url.pathname.startsWith(dir);
}

test('an old shell whose portal a deploy removed says "Chartkey was updated", not a broken page', async ({ browser }) => {
  const page = await newAccount(browser, 'Deploy Patient');
  await signOut(page);
  await page.goto('/signin');
  // The deploy: this build's portal is gone, the server names another build.
  await page.route(await portalFiles(page), (route) => route.fulfill({ status: 404, body: 'Not Found' }));
  await serveAnotherBuild(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  const banner = page.getByTestId('update-banner');
  await expect(banner).toContainText('Chartkey was updated. Reload to use the new version');
  await expect(page.getByRole('heading', { name: 'Chartkey was updated' })).toBeVisible();
  await expect(nav(page, 'Records')).toHaveCount(0);

  // After the reload (the server's build again; the server session stayed)
  // unlocking opens the account.
  await page.unrouteAll({ behavior: 'wait' });
  await banner.getByRole('button', { name: 'Reload' }).click();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(nav(page, 'Records')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Lock', exact: true })).toBeVisible();
  await page.context().close();
});

test('when the portal does not arrive the shell says so, and "Try again" opens the account', async ({ browser }) => {
  const page = await newAccount(browser, 'Offline Patient');
  // A locked session: the shell asks for the passkey, and the portal's
  // files fail to arrive (same build, a dropped connection).
  await page.route(await portalFiles(page), (route) => route.abort('connectionreset'));
  await page.reload();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Chartkey could not finish loading' })).toBeVisible();
  await expect(page.getByRole('alert')).toContainText('Check your connection and try again');
  await expect(page.getByTestId('update-banner')).toHaveCount(0);

  await page.unrouteAll({ behavior: 'wait' });
  await page.getByRole('button', { name: 'Try again' }).click();
  await expect(page.getByRole('button', { name: 'Lock', exact: true })).toBeVisible();
  // No second passkey prompt: the keys unlocked before are the ones handed over.
  await expect(page.getByRole('heading', { name: 'Unlock your keys' })).toHaveCount(0);
  await page.context().close();
});
