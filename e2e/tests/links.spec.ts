// Share by link: SMART Health Links made in the patient's browser and
// resolved by a receiver written only with a general JOSE library (npm
// `jose`) and fetch, with no Chartkey code: the patient summary, and
// records of chosen kinds behind a passcode, embedded and by location.
// The server never receives a link's key; every use shows on the Links
// page; a stopped link answers 404 at once.
import { test, expect, Page, Request } from '@playwright/test';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { compactDecrypt, base64url } from 'jose';
import { FLOYD, importRecords, makeLink, nav, patientWithRecords, qrText } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();
test.describe.configure({ mode: 'serial' });

/** Canonical JSON: keys sorted at every level. */
function canonical(value: any): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

interface Payload { url: string; key: string; exp?: number; flag?: string; label?: string }

/** The payload of a `shlink:/…` link (after any viewer prefix). */
function payloadOf(link: string): Payload {
  const encoded = link.slice(link.indexOf('shlink:/') + 'shlink:/'.length);
  return JSON.parse(new TextDecoder().decode(base64url.decode(encoded)));
}

/** A receiver: the manifest, then each file fetched if need be and decrypted with the link's key. */
async function receive(link: string, body: Record<string, unknown>): Promise<{ status: number; files?: any[]; answer: any }> {
  const payload = payloadOf(link);
  const res = await fetch(payload.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answer = await res.json();
  if (res.status !== 200) return { status: res.status, answer };
  const key = base64url.decode(payload.key);
  const files = [];
  for (const file of answer.files) {
    expect(file.contentType).toBe('application/fhir+json');
    const jwe = file.embedded ?? (await (await fetch(file.location)).text());
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, key);
    expect(protectedHeader).toMatchObject({ alg: 'dir', enc: 'A256GCM', cty: 'application/fhir+json' });
    files.push(JSON.parse(new TextDecoder().decode(plaintext)));
  }
  return { status: 200, files, answer };
}

test('links made in the browser resolve with a general JOSE library; uses show; stopping is at once', async ({ page }) => {
  const requests: Request[] = [];
  page.on('request', (r) => requests.push(r));
  await patientWithRecords(page, 'Link Patient');

  // The patient summary, no passcode.
  const summaryLink = await makeLink(page, async () => {
    await page.getByTestId('link-label').fill('For Dr Rao');
  });
  expect(summaryLink.startsWith(`${new URL(page.url()).origin}/view#shlink:/`), summaryLink).toBe(true);
  expect(await qrText(page, 'link-made'), 'the QR code holds exactly the link').toBe(summaryLink);
  expect(payloadOf(summaryLink)).toMatchObject({ label: 'For Dr Rao' });
  const summary = await receive(summaryLink, { recipient: 'Dr Rao, Mercy ER' });
  expect(summary.status).toBe(200);
  expect(summary.answer.status).toBe('finalized');
  const ips = summary.files![0];
  expect(ips.resourceType).toBe('Bundle');
  expect(ips.type).toBe('document');
  expect(ips.entry[0].resource.resourceType).toBe('Composition');

  // Conditions and immunizations, behind a passcode, fetched by location.
  const kindsLink = await makeLink(page, async () => {
    await page.locator('input[data-kind="Conditions"]').check();
    await page.locator('input[data-kind="Immunizations"]').check();
    await page.getByTestId('link-label').fill('Conditions for the clinic');
    await page.getByTestId('link-passcode').fill('4711');
  });
  expect(payloadOf(kindsLink).flag).toBe('P');
  const wrong = await receive(kindsLink, { recipient: 'Front desk', passcode: '0000' });
  expect(wrong).toMatchObject({ status: 401, answer: { remainingAttempts: 9 } });
  const chosen = await receive(kindsLink, { recipient: 'Dr Rao, Mercy ER', passcode: '4711', embeddedLengthMax: 10 });
  expect(chosen.status).toBe(200);
  expect(chosen.answer.files[0].location).toMatch(/\/shl\/files\//);
  const expected = JSON.parse(readFileSync(FLOYD, 'utf8'))
    .entry.map((e: any) => e.resource)
    .filter((r: any) => r.resourceType === 'Condition' || r.resourceType === 'Immunization')
    .map(canonical)
    .sort();
  const got = chosen.files![0].entry.map((e: any) => canonical(e.resource)).sort();
  expect(got).toEqual(expected);

  // The key never reached the server, in any request's address or body.
  for (const link of [summaryLink, kindsLink]) {
    const key = payloadOf(link).key;
    const leaked = requests.filter((r) => r.url().includes(key) || (r.postData() ?? '').includes(key));
    expect(leaked.map((r) => r.url())).toEqual([]);
  }

  // The Links page: both links, their uses, and "Stop sharing".
  await nav(page, 'Links').click();
  const rows = page.getByTestId('link');
  await expect(rows).toHaveCount(2);
  await expect(page.getByText('For Dr Rao', { exact: true })).toBeVisible();
  await expect(rows.filter({ hasText: 'Conditions for the clinic' }).getByTestId('link-use')).toContainText('Dr Rao, Mercy ER');
  await expect(rows.filter({ hasText: 'Conditions for the clinic' })).toContainText('Passcode (9 attempts left)');
  // Change expiry: a year from now, the content unchanged; the link still opens.
  const kindsRow = rows.filter({ hasText: 'Conditions for the clinic' });
  await kindsRow.getByTestId('link-new-expiry').selectOption({ label: '1 year' });
  await kindsRow.getByRole('button', { name: 'Change expiry' }).click();
  await expect(kindsRow.locator('td').nth(2)).toContainText(String(new Date().getFullYear() + 1), { timeout: 30_000 });
  const later = await receive(kindsLink, { recipient: 'Dr Rao, Mercy ER', passcode: '4711' });
  expect(later.files![0].entry.length).toBe(expected.length);
  page.once('dialog', (dialog) => dialog.accept());
  await rows.filter({ hasText: 'Conditions for the clinic' }).getByRole('button', { name: 'Stop sharing' }).click();
  await expect(rows.filter({ hasText: 'Conditions for the clinic' }).locator('[data-status]')).toHaveText('Stopped', { timeout: 30_000 });
  const after = await receive(kindsLink, { recipient: 'Dr Rao, Mercy ER', passcode: '4711' });
  expect(after.status).toBe(404);
  // The patient was told of each use.
  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: /^Inbox/ }).click();
  await expect(page.getByText('One of your links was opened by “Dr Rao, Mercy ER”.').first()).toBeVisible();
});

test('a long-term link serves its new content after an update; a direct-file link answers a GET', async ({ page }) => {
  await patientWithRecords(page, 'Long-term Patient');
  const immunizations = () => JSON.parse(readFileSync(FLOYD, 'utf8')).entry.map((e: any) => e.resource)
    .filter((r: any) => r.resourceType === 'Immunization');
  const longTerm = await makeLink(page, async () => {
    await page.locator('input[data-kind="Immunizations"]').check();
    await page.getByTestId('link-label').fill('Vaccinations for school');
    await page.getByText('Long-term: I may update what it carries later').click();
  });
  expect(payloadOf(longTerm).flag).toBe('L');
  const first = await receive(longTerm, { recipient: 'School nurse' });
  expect(first.answer.status).toBe('can-change');
  expect(first.files![0].entry.map((e: any) => canonical(e.resource)).sort())
    .toEqual(immunizations().map(canonical).sort());

  // A new vaccination; the link updated from the Links page carries it too.
  const shot = { resourceType: 'Immunization', id: 'flu-2026', status: 'completed',
    vaccineCode: { text: 'Influenza, seasonal' }, occurrenceDateTime: '2026-11-20' };
  const file = join(mkdtempSync(join(tmpdir(), 'chartkey-shot-')), 'flu.json');
  writeFileSync(file, JSON.stringify(shot));
  await importRecords(page, [file]);
  await nav(page, 'Links').click();
  const row = page.getByTestId('link').filter({ hasText: 'Vaccinations for school' });
  await row.getByRole('button', { name: 'Show the link' }).click();
  expect((await page.getByTestId('link-shown').getByTestId('link-text').inputValue()).trim()).toBe(longTerm);
  expect(await qrText(page, 'link-shown')).toBe(longTerm);
  await row.getByRole('button', { name: 'Update what it carries' }).click();
  await expect.poll(async () => {
    const again = await receive(longTerm, { recipient: 'School nurse' });
    return again.files![0].entry.length;
  }, { timeout: 30_000 }).toBe(immunizations().length + 1);
  const updated = await receive(longTerm, { recipient: 'School nurse' });
  expect(updated.files![0].entry.map((e: any) => canonical(e.resource)).sort())
    .toEqual([...immunizations(), shot].map(canonical).sort());

  // A direct file: one GET, no manifest.
  await nav(page, 'Records').click();
  await expect(page.getByTestId('link-form')).toBeVisible({ timeout: 60_000 });
  const direct = await makeLink(page, async () => {
    await page.getByTestId('link-label').fill('Summary, one step');
    await page.getByTestId('link-direct').check();
  });
  const payload = payloadOf(direct);
  expect(payload.flag).toBe('U');
  const res = await fetch(`${payload.url}?recipient=${encodeURIComponent('Triage nurse')}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/jose');
  const { plaintext } = await compactDecrypt(await res.text(), base64url.decode(payload.key));
  const ips = JSON.parse(new TextDecoder().decode(plaintext));
  expect(ips.type).toBe('document');
  // The uses show on the Links page.
  await nav(page, 'Links').click();
  await expect(page.getByTestId('link').filter({ hasText: 'Summary, one step' }).getByTestId('link-use'))
    .toContainText('Triage nurse');
});
