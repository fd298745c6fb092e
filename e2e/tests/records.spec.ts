// Records in the browser: the three sample bundles imported (encrypted
// here, uploaded, anchored as one batch each), the timeline, export and
// re-import byte for byte, a correction, tampering, bad input, and a scan
// of everything the server keeps for the bundles' plaintext.
import { test, expect, Page } from '@playwright/test';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FIXTURES, FLOYD, addAuthenticator, confirmRecoveryPhrase, startSignUp } from './helpers';
import { plaintextFound, scanAfterThisFile } from '../scan';

scanAfterThisFile();

const BUNDLES = {
  floyd: FLOYD,
  reuben: join(FIXTURES, 'Reuben_Lind_1d03714f-4851-44d9-a6b6-8a2752bbe178.json'),
  fletcher: join(FIXTURES, 'Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json'),
};

// Everything here shares one server and its data directory, scanned at the end.
test.describe.configure({ mode: 'serial' });

function bundleResources(path: string): any[] {
  return JSON.parse(readFileSync(path, 'utf8')).entry.map((e: any) => e.resource);
}

/** Canonical JSON: keys sorted at every level. */
function canonical(value: any): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

async function newPatient(page: Page, name: string) {
  await addAuthenticator(page);
  await startSignUp(page, name);
  await confirmRecoveryPhrase(page);
  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Records' }).click();
  await expect(page.getByRole('heading', { name: 'Records', exact: true })).toBeVisible();
}

/** Chooses files, optionally unticks resource types, imports, and waits for the anchor. */
async function importFiles(page: Page, files: string[], untick: string[] = []) {
  await page.getByTestId('file-input').setInputFiles(files);
  await expect(page.getByTestId('import-preview')).toBeVisible();
  for (const type of untick) await page.locator(`input[data-type="${type}"]`).uncheck();
  await page.getByTestId('import-button').click();
  await expect(page.getByTestId('import-done')).toContainText('anchored in block', { timeout: 60_000 });
}

async function recordCount(page: Page): Promise<number> {
  const all = page.locator('.filters .chip').first();
  await expect(all).not.toHaveText('All (0)');
  return Number((await all.textContent())!.match(/\((\d+)\)/)![1]);
}

/** The server's list, through the page's own session. */
async function listed(page: Page): Promise<any[]> {
  const res = await page.request.post('/api/records/list', { data: {}, headers: { 'content-type': 'application/json' } });
  expect(res.status()).toBe(200);
  return res.json();
}

async function exportRecords(page: Page): Promise<string> {
  const download = page.waitForEvent('download');
  await page.getByTestId('export-button').click();
  const file = await (await download).path();
  return readFileSync(file, 'utf8');
}

for (const [name, path] of [['the smallest', BUNDLES.floyd], ['a middle-sized', BUNDLES.reuben]] as const) {
  test(`importing ${name} sample bundle gives one record per resource, one batch anchor`, async ({ page }) => {
    await newPatient(page, 'Import Tester');
    const expected = bundleResources(path).length;
    await importFiles(page, [path]);
    await expect(page.getByTestId('timeline').locator('.timeline-item')).toHaveCount(expected);
    expect(await recordCount(page)).toBe(expected);
    const records = await listed(page);
    expect(records).toHaveLength(expected);
    expect(new Set(records.map((r) => r.batch.root)).size).toBe(1);
    expect(records.every((r) => r.ledger.kind === 'batch' && r.ledger.count === expected)).toBe(true);
  });
}

// Dates as the reader writes them: the same chart in two locales, no
// ISO 8601 text on the page.
for (const [locale, heading, instant] of [
  ['en-GB', /^\d{1,2} [A-Z][a-z]{2,3} \d{4}$/, /^\d{1,2} [A-Z][a-z]{2,3} \d{4}, \d{1,2}:\d{2}$/],
  ['en-US', /^[A-Z][a-z]{2} \d{1,2}, \d{4}$/, /^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\s?[AP]M$/],
] as const) {
  test(`dates read as ${locale} writes them`, async ({ browser }) => {
    const page = await (await browser.newContext({ locale })).newPage();
    await newPatient(page, `Date Reader ${locale}`);
    await importFiles(page, [BUNDLES.floyd]);
    await expect(page.getByTestId('timeline').locator('.timeline-item')).toHaveCount(bundleResources(BUNDLES.floyd).length);
    const days = await page.locator('.timeline-day').allTextContents();
    const dated = days.filter((d) => d !== 'Undated' && d !== 'Needs attention');
    expect(dated.length).toBeGreaterThan(3);
    for (const day of dated) expect(day).toMatch(heading);
    await page.getByTestId('timeline').locator('.timeline-item').first().click();
    const shown = page.locator('#record-view dd time');
    await expect(shown).toHaveCount(1);
    const written = (await shown.getAttribute('datetime'))!;
    const text = (await shown.textContent())!;
    expect(written).toMatch(/^\d{4}/);
    expect(text).not.toBe(written);
    expect(heading.test(text) || instant.test(text), `${written} shown as ${text}`).toBe(true);
    await page.context().close();
  });
}

test('the 1,111-resource bundle without claims: import, export, re-import byte for byte', async ({ browser }) => {
  test.setTimeout(240_000);
  const page = await (await browser.newContext()).newPage();
  await newPatient(page, 'Big Importer');
  const skipped = ['Claim', 'ExplanationOfBenefit'];
  const kept = bundleResources(BUNDLES.fletcher).filter((r) => !skipped.includes(r.resourceType));
  expect(kept).toHaveLength(1111 - 249 - 127);
  await importFiles(page, [BUNDLES.fletcher], skipped);
  expect(await recordCount(page)).toBe(kept.length);
  await expect(page.locator('.filters .chip', { hasText: 'Claims and billing' })).toHaveCount(0);
  const records = await listed(page);
  expect(new Set(records.map((r) => r.batch.root)).size).toBe(1);

  // Filters and search work on what was decrypted here.
  await page.locator('.filters .chip', { hasText: 'Immunizations' }).click();
  await expect(page.getByTestId('timeline').locator('.timeline-item')).toHaveCount(10);
  await page.locator('.filters .chip').first().click();
  await page.getByTestId('search').fill('total cholesterol');
  await expect(page.getByTestId('timeline').locator('.timeline-item')).toHaveCount(14);
  await page.getByTestId('search').fill('');

  // Export: every kept resource, canonically equal to the original.
  const exported = await exportRecords(page);
  const bundle = JSON.parse(exported);
  expect(bundle.resourceType).toBe('Bundle');
  const out = bundle.entry.map((e: any) => canonical(e.resource)).sort();
  expect(out).toEqual(kept.map(canonical).sort());
  // fullUrls survive, so references keep resolving.
  expect(bundle.entry.every((e: any) => e.fullUrl?.startsWith('urn:uuid:'))).toBe(true);

  // Re-import into another chart, export again: the same bytes per resource.
  const dir = mkdtempSync(join(tmpdir(), 'chartkey-export-'));
  const file = join(dir, 'chartkey-records.json');
  writeFileSync(file, exported);
  const second = await (await browser.newContext()).newPage();
  await newPatient(second, 'Second Importer');
  await importFiles(second, [file]);
  expect(await recordCount(second)).toBe(kept.length);
  const again = JSON.parse(await exportRecords(second));
  const raw = (b: any) => b.entry.map((e: any) => JSON.stringify(e)).sort();
  expect(raw(again)).toEqual(raw(bundle));
});

test('a record view renders the resource, its references, and its ledger line; raw JSON on request', async ({ page }) => {
  await newPatient(page, 'Viewer Patient');
  await importFiles(page, [BUNDLES.floyd]);
  await page.getByTestId('search').fill('Basic Metabolic Panel');
  await page.getByTestId('timeline').locator('.timeline-button').first().click();
  const view = page.getByTestId('record-view');
  await expect(view.getByRole('heading', { name: 'Basic Metabolic Panel' })).toBeVisible();
  await expect(view.getByTestId('ledger-line')).toContainText(/Anchored in block \d+ — verified/);
  // A result reference resolves to its Observation.
  await view.getByRole('button', { name: /Glucose/ }).first().click();
  await expect(view.getByRole('heading', { name: /Glucose/ })).toBeVisible();
  await expect(view).toContainText('Value');
  await view.getByTestId('raw-toggle').click();
  await expect(view.getByTestId('raw-json')).toContainText('"resourceType": "Observation"');
  // The Patient's generated narrative is text, never markup.
  await page.getByTestId('search').fill('Floyd');
  await page.getByTestId('timeline').locator('.timeline-button').first().click();
  await view.getByTestId('raw-toggle').click();
  await expect(view.getByTestId('raw-json')).toContainText('<div xmlns');
  await expect(view.locator('div[xmlns]')).toHaveCount(0);

  // Trends open on blood pressure (systolic and diastolic, one chart, units
  // as people write them), then HbA1c, glucose and weight.
  const select = page.getByTestId('trend-select');
  const options = await select.locator('option').allTextContents();
  expect(options[0]).toMatch(/^Blood pressure \(mmHg, \d+ measurements\)$/);
  const glucose = options.findIndex((o) => o.startsWith('Glucose'));
  const weight0 = options.findIndex((o) => o.startsWith('Body Weight'));
  expect(glucose).toBeGreaterThan(0);
  expect(weight0).toBeGreaterThan(glucose);
  const chart = page.getByTestId('trend-chart');
  await expect(chart).toHaveAttribute('aria-label', /^Blood pressure in mmHg \(upper line systolic, lower line diastolic\)/);
  await expect(chart.locator('polyline')).toHaveCount(2);
  await expect(page.getByTestId('trend-table').locator('thead')).toContainText('SystolicDiastolic');
  // Dates as the reader writes them, not ISO.
  await expect(page.getByTestId('trend-table').locator('tbody tr').first().locator('td').first()).not.toContainText(/\d{4}-\d{2}/);
  // A numeric series as a chart with its reference range, and as a table.
  const weight = await select.locator('option', { hasText: 'Body Weight' }).first().getAttribute('value');
  await select.selectOption(weight!);
  await expect(page.getByTestId('trend-chart')).toHaveAttribute('aria-label', /Body Weight in kg, \d+ measurements/);
  expect(await page.getByTestId('trend-chart').locator('circle').count()).toBeGreaterThan(1);
  await page.getByText('Show as a table').click();
  expect(await page.getByTestId('trend-table').locator('tbody tr').count()).toBeGreaterThan(1);
});

test('the patient summary lists the IPS sections and downloads as a FHIR document', async ({ page }) => {
  await newPatient(page, 'Summary Patient');
  await importFiles(page, [BUNDLES.floyd]);
  await page.getByTestId('summary-button').click();
  const summary = page.getByTestId('summary');
  for (const title of ['Problems', 'Medications', 'Allergies and intolerances', 'Immunizations', 'Results', 'Vital signs']) {
    await expect(summary.getByRole('heading', { name: title, exact: true })).toBeVisible();
  }
  await expect(summary).toContainText('No information about allergies');
  await expect(summary).toContainText('No information about medications');

  const download = page.waitForEvent('download');
  await page.getByTestId('summary-download').click();
  const bundle = JSON.parse(readFileSync(await (await download).path(), 'utf8'));
  expect(bundle.type).toBe('document');
  const composition = bundle.entry[0].resource;
  expect(composition.resourceType).toBe('Composition');
  expect(composition.type.coding[0].code).toBe('60591-5');
  const codes = composition.section.map((s: any) => s.code.coding[0].code);
  expect(codes).toEqual(expect.arrayContaining(['11450-4', '10160-0', '48765-2', '11369-6']));
  // Every reference resolves inside the document.
  const urls = new Set(bundle.entry.map((e: any) => e.fullUrl));
  const refs = (JSON.stringify(bundle).match(/"reference":"[^"]*"/g) ?? []).map((r) => r.slice(13, -1));
  expect(refs.length).toBeGreaterThan(10);
  expect(refs.filter((r) => !urls.has(r))).toEqual([]);
  // Each immunization is the record as imported, without its encounter (not in the document).
  const given = bundleResources(BUNDLES.floyd).filter((r) => r.resourceType === 'Immunization');
  const listed = bundle.entry.map((e: any) => e.resource).filter((r: any) => r.resourceType === 'Immunization');
  expect(listed).toHaveLength(given.length);
  for (const r of listed) {
    const { encounter, ...rest } = given.find((g) => g.id === r.id);
    expect(encounter).toBeDefined();
    expect(canonical(r)).toBe(canonical(rest));
  }
});

test('a correction of an imported record shows on both records, both anchored', async ({ page }) => {
  await newPatient(page, 'Correcting Patient');
  const file = join(mkdtempSync(join(tmpdir(), 'chartkey-')), 'conditions.json');
  writeFileSync(file, JSON.stringify({
    resourceType: 'Bundle', type: 'collection', entry: [
      { fullUrl: 'urn:uuid:c1', resource: { resourceType: 'Condition', id: 'c1', code: { text: 'Hay fever' } } },
      { fullUrl: 'urn:uuid:c2', resource: { resourceType: 'Condition', id: 'c2', code: { text: 'Sinusitis' } } },
    ],
  }));
  // Two resources: one batch anchor; the correction then amends a batch member.
  await importFiles(page, [file]);
  await page.getByTestId('timeline').getByRole('button', { name: /Hay fever/ }).click();
  const view = page.getByTestId('record-view');
  await view.getByTestId('correct-button').click();
  const text = view.getByTestId('correction-text');
  await text.fill(JSON.stringify({ resourceType: 'Condition', id: 'c1', code: { text: 'Seasonal allergic rhinitis' } }));
  await view.getByTestId('correction-save').click();
  await expect(page.getByTestId('timeline').locator('.timeline-item')).toHaveCount(3);
  await page.getByTestId('timeline').getByRole('button', { name: /Hay fever/ }).click();
  await expect(view.getByTestId('corrected-notice')).toBeVisible();
  await expect(page.getByTestId('timeline').locator('.badge', { hasText: 'corrected' })).toHaveCount(1);
  await view.getByRole('button', { name: 'See the correction' }).click();
  await expect(view.getByRole('heading', { name: 'Seasonal allergic rhinitis' })).toBeVisible();
  await expect(view.getByTestId('correction-notice')).toBeVisible();
  await expect(view.getByTestId('ledger-line')).toContainText('verified');
  const records = await listed(page);
  const correction = records.find((r) => r.amends);
  expect(correction.ledger.kind).toBe('record');
  const original = records.find((r) => r.id === correction.amends);
  expect(original.ledger.kind).toBe('batch');
  expect(original.amended_by).toEqual([correction.id]);
});

test('bad input gets a clear message and changes nothing', async ({ page }) => {
  await newPatient(page, 'Careful Patient');
  const dir = mkdtempSync(join(tmpdir(), 'chartkey-bad-'));
  const write = (name: string, body: string | Buffer) => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };
  const input = page.getByTestId('file-input');
  await input.setInputFiles(write('broken.json', '{"resourceType": "Patient",'));
  await expect(page.getByRole('alert')).toContainText('broken.json: This file is not valid JSON');
  await input.setInputFiles(write('plain.json', '{"name": "not fhir"}'));
  await expect(page.getByRole('alert')).toContainText('not a FHIR resource');
  // Over the server's limit (the e2e server allows 5 MB): refused before encrypting.
  await input.setInputFiles(write('huge.bin', Buffer.alloc(6_000_000, 1)));
  await expect(page.getByRole('alert')).toContainText('over the limit of 5 MB');
  expect(await listed(page)).toHaveLength(0);
  // An unknown resource type is kept, as a generic record.
  await input.setInputFiles(write('new.json', '{"resourceType": "FancyNewThing", "id": "x"}'));
  await expect(page.getByTestId('import-preview')).toContainText('Fancy new thing — 1');
  await page.getByTestId('import-button').click();
  await expect(page.getByTestId('import-done')).toContainText('anchored');
  await expect(page.locator('.filters .chip', { hasText: 'Other (1)' })).toBeVisible();
});

test('a flipped byte in a stored record shows the tampering warning and nothing of the record', async ({ page }) => {
  await newPatient(page, 'Tampered Patient');
  const file = join(mkdtempSync(join(tmpdir(), 'chartkey-')), 'allergy.json');
  writeFileSync(file, JSON.stringify({ resourceType: 'AllergyIntolerance', code: { text: 'Peanut allergy' } }));
  await importFiles(page, [file]);
  const [record] = await listed(page);
  // The envelope's hash is 0x hex on the wire; the blob store names files by its bare digits.
  const name = record.blob.replace(/^0x/, '');
  const blob = join(process.env.CHARTKEY_DATA_DIR!, 'blobs', name.slice(0, 2), name);
  const bytes = readFileSync(blob);
  bytes[80] ^= 0x01;
  writeFileSync(blob, bytes);
  // A reload locks the keys; the passkey unlocks them again, on the same page.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Unlock your keys' })).toBeVisible();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Records', exact: true })).toBeVisible();
  await page.getByTestId('timeline').locator('.timeline-button').first().click();
  const view = page.getByTestId('record-view');
  await expect(view.getByTestId('tamper-warning')).toContainText('Tampering detected');
  await expect(view).not.toContainText('Peanut');
  await expect(view.getByTestId('raw-toggle')).toHaveCount(0);
});

test('the server keeps no plaintext of the imported bundles', async () => {
  const { files, found } = plaintextFound(process.env.CHARTKEY_DATA_DIR!, process.env.CHARTKEY_LOG_FILE);
  expect(files.some((f) => f.includes('blobs'))).toBe(true);
  expect(found).toEqual([]);
});

test('a record and a ledger transaction have their own addresses: reload, back and forward keep them', async ({ page }) => {
  await newPatient(page, 'Address Patient');
  await importFiles(page, [BUNDLES.floyd]);
  await page.getByTestId('timeline').getByRole('button').first().click();
  const view = page.getByTestId('record-view');
  await expect(view).toBeVisible();
  const title = (await view.getByRole('heading', { level: 2 }).textContent())!;
  await expect(page).toHaveURL(/\/records\/0x[0-9a-f]{64}$/);
  const address = page.url();
  // A reload locks the keys; unlocking shows the same record.
  await page.reload();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(view.getByRole('heading', { level: 2 })).toHaveText(title);
  await view.getByRole('button', { name: 'Close the record' }).click();
  await expect(page).toHaveURL(/\/records$/);
  await expect(view).toHaveCount(0);
  await page.goBack();
  await expect(page).toHaveURL(address);
  await expect(view.getByRole('heading', { level: 2 })).toHaveText(title);
  await page.goForward();
  await expect(view).toHaveCount(0);
  // An address that names no record is the Records page.
  await page.goto('/records/not-a-record');
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(page).toHaveURL(/\/records$/);

  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Ledger' }).click();
  await page.getByRole('button', { name: 'Show transaction' }).first().click();
  await expect(page.getByTestId('ledger-transaction')).toContainText('succeeded');
  await expect(page).toHaveURL(/\/ledger\/0x[0-9a-f]{64}$/);
  const hash = page.url().split('/').pop()!;
  await page.reload();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(page.getByTestId('ledger-transaction')).toContainText(hash);
  await page.goBack();
  await expect(page).toHaveURL(/\/ledger$/);
});
