// The link viewer (/view): what a stranger opens on a phone. A link made
// in the patient's browser opens there without an account and without the
// portal's code (first load under 250,000 bytes transferred), asks for the
// passcode, shows the records as the chart does, at phone width, keeps
// nothing, and never sends the link's key anywhere. Pasting works too, and
// a stopped link says so.
import { test, expect, Page, Request, Browser } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { FLOYD, makeLink, nav, patientWithRecords, qrText } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();
test.describe.configure({ mode: 'serial' });

const PHONE = { width: 390, height: 844 };
/** The budget for the viewer's first load, in bytes transferred. */
const FIRST_LOAD_BUDGET = 250_000;

/** A stranger's phone: a new context, no account, every request kept. */
async function phone(browser: Browser) {
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const requests: Request[] = [];
  page.on('request', (r) => requests.push(r));
  return { context, page, requests };
}

/** Bytes transferred (headers and bodies as sent) by the requests so far. */
async function transferred(requests: Request[]): Promise<number> {
  let total = 0;
  for (const r of requests) {
    const sizes = await r.sizes();
    total += sizes.responseHeadersSize + sizes.responseBodySize;
  }
  return total;
}

const conditions = () => JSON.parse(readFileSync(FLOYD, 'utf8')).entry.map((e: any) => e.resource)
  .filter((r: any) => r.resourceType === 'Condition');

test('a link opens in the viewer on a phone: small, passcode, records as the chart shows them, nothing kept', async ({ page, browser }) => {
  await patientWithRecords(page, 'Viewer Patient');
  const link = await makeLink(page, async () => {
    await page.locator('input[data-kind="Conditions"]').check();
    await page.getByTestId('link-label').fill('For the ER');
    await page.getByTestId('link-passcode').fill('2468');
  });
  const origin = new URL(page.url()).origin;
  expect(link.startsWith(`${origin}/view#shlink:/`), link).toBe(true);
  const key = JSON.parse(Buffer.from(link.split('shlink:/')[1], 'base64url').toString()).key;

  const { context, page: viewer, requests } = await phone(browser);
  await viewer.goto(link);
  await expect(viewer.getByRole('heading', { name: 'For the ER' })).toBeVisible();
  // The first load: the viewer alone, within budget.
  await viewer.waitForLoadState('networkidle');
  const urls = requests.map((r) => new URL(r.url()).pathname);
  expect(urls.filter((u) => /chartkey-(shell|app|kdf-worker)/.test(u)), 'none of the portal\'s code').toEqual([]);
  const firstLoad = await transferred(requests);
  console.log(`viewer.first_load_bytes: ${firstLoad}`);
  expect(firstLoad).toBeLessThanOrEqual(FIRST_LOAD_BUDGET);
  // The key left the address bar (and so the tab's history).
  expect(viewer.url()).toBe(`${origin}/view`);

  await viewer.getByLabel('Your name and where you are').fill('Dr Rao, Mercy ER');
  await viewer.getByLabel('Passcode').fill('0000');
  await viewer.getByRole('button', { name: 'Open the records' }).click();
  await expect(viewer.getByRole('alert')).toHaveText('Wrong passcode. 9 attempts left.');
  await viewer.getByLabel('Passcode').fill('2468');
  await viewer.getByRole('button', { name: 'Open the records' }).click();
  const records = viewer.getByTestId('viewer-records');
  await expect(records).toBeVisible({ timeout: 30_000 });
  // Each condition, as the chart's record view shows it.
  const expected = conditions().map((c: any) => c.code.text).sort();
  await expect(records.getByTestId('viewer-record')).toHaveCount(expected.length);
  expect((await records.getByTestId('viewer-record').locator('h4').allTextContents()).sort()).toEqual(expected);
  await expect(records.getByRole('heading', { name: 'Conditions' })).toBeVisible();
  const first = records.getByTestId('viewer-record').first();
  await expect(first.locator('dt').first()).toHaveText('Type');
  await expect(first.locator('dd').first()).toHaveText('Condition');
  // Phone width: nothing wider than the screen.
  expect(await viewer.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  await viewer.screenshot({ path: 'screenshots/viewer-phone.png', fullPage: true });
  // Nothing kept: no storage, no cookies; and the key went nowhere.
  expect(await viewer.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    databases: (await indexedDB.databases()).length,
    caches: (await caches.keys()).length,
  }))).toEqual({ local: 0, session: 0, databases: 0, caches: 0 });
  expect(await context.cookies()).toEqual([]);
  const leaked = requests.filter((r) => r.url().includes(key) || (r.postData() ?? '').includes(key));
  expect(leaked.map((r) => r.url())).toEqual([]);

  // The patient sees who opened it.
  await nav(page, 'Links').click();
  await expect(page.getByTestId('link').filter({ hasText: 'For the ER' }).getByTestId('link-use')).toContainText('Dr Rao, Mercy ER');

  // A pasted link (the patient summary) opens too.
  const summary = await (async () => {
    await nav(page, 'Records').click();
    return makeLink(page, async () => { await page.getByTestId('link-label').fill('Summary for the ER'); });
  })();
  await viewer.getByRole('button', { name: 'Open another link' }).click();
  await viewer.getByLabel('Paste the link').fill(summary);
  await viewer.getByRole('button', { name: 'Open the link' }).click();
  await viewer.getByLabel('Your name and where you are').fill('Dr Rao, Mercy ER');
  await viewer.getByRole('button', { name: 'Open the records' }).click();
  await expect(records.getByRole('heading', { name: 'Problems', exact: true })).toBeVisible({ timeout: 30_000 });
  await expect(records.getByRole('heading', { name: 'Allergies and intolerances' })).toBeVisible();
  await expect(records.getByRole('heading', { name: 'Patient', exact: true })).toBeVisible();

  // Stopped: the viewer says so at once.
  await nav(page, 'Links').click();
  page.once('dialog', (dialog) => dialog.accept());
  const row = page.getByTestId('link').filter({ hasText: 'Summary for the ER' });
  await row.getByRole('button', { name: 'Stop sharing' }).click();
  await expect(row.locator('[data-status]')).toHaveText('Stopped', { timeout: 30_000 });
  await viewer.getByRole('button', { name: 'Open the records' }).click();
  await expect(viewer.getByRole('alert')).toContainText('stopped by the patient');

  // Not a link: a clear message.
  await viewer.getByRole('button', { name: 'Open another link' }).click();
  await viewer.getByLabel('Paste the link').fill('https://example.org/not-a-link');
  await viewer.getByRole('button', { name: 'Open the link' }).click();
  await expect(viewer.getByRole('alert')).toContainText('not a SMART Health Link');
  await context.close();
});

test('the emergency card prints its facts and a QR code that decodes to exactly its link, which opens in the viewer', async ({ page, browser }) => {
  await patientWithRecords(page, 'Card Patient');
  await nav(page, 'Links').click();
  await page.getByRole('link', { name: 'emergency card' }).click();
  await expect(page.getByRole('heading', { name: 'Emergency card', level: 1 })).toBeVisible();
  await expect(page.getByTestId('card-tradeoff')).toContainText('Whoever holds this card, or a photo of it, can read your patient summary.');
  await page.getByTestId('card-make').click();
  const card = page.getByTestId('emergency-card');
  await expect(card).toBeVisible({ timeout: 30_000 });
  const patient = JSON.parse(readFileSync(FLOYD, 'utf8')).entry.map((e: any) => e.resource).find((r: any) => r.resourceType === 'Patient');
  await expect(card).toContainText(patient.name[0].family);
  await expect(card.locator('dt', { hasText: 'Born' })).toBeVisible();
  // The patient chooses what is printed.
  await page.getByLabel('Date of birth').uncheck();
  await expect(card.locator('dt', { hasText: 'Born' })).toHaveCount(0);

  // The QR code, read by an independent decoder, is exactly the card's link.
  const link = (await card.getByTestId('card-link').textContent())!.trim();
  expect(link).toMatch(/\/view#shlink:\//);
  expect(await qrText(page, 'emergency-card')).toBe(link);
  const payload = JSON.parse(Buffer.from(link.split('shlink:/')[1], 'base64url').toString());
  expect(payload).toMatchObject({ flag: 'L', label: 'Emergency card' });
  expect(payload.exp).toBeUndefined();
  // Printed, the card is all there is on the page.
  await page.emulateMedia({ media: 'print' });
  await expect(page.getByTestId('card-tradeoff')).toBeHidden();
  await expect(card).toBeVisible();
  await page.screenshot({ path: 'screenshots/emergency-card-print.png' });
  await page.emulateMedia({ media: 'screen' });

  // Coming back shows the same card; no second link is made.
  await nav(page, 'Links').click();
  await expect(page.getByTestId('link')).toHaveCount(1);
  await page.getByRole('link', { name: 'emergency card' }).click();
  await expect(page.getByTestId('emergency-card').getByTestId('card-link')).toHaveText(link, { timeout: 30_000 });
  await expect(page.getByTestId('card-make')).toHaveCount(0);

  // A first responder's phone opens it: no account, no passcode.
  const { context, page: viewer } = await phone(browser);
  await viewer.goto(link);
  await viewer.getByLabel('Your name and where you are').fill('Paramedic, Unit 12');
  await viewer.getByRole('button', { name: 'Open the records' }).click();
  const records = viewer.getByTestId('viewer-records');
  await expect(records.getByRole('heading', { name: 'Problems', exact: true })).toBeVisible({ timeout: 30_000 });
  await expect(records.getByRole('heading', { name: 'Patient', exact: true })).toBeVisible();
  await context.close();
});
