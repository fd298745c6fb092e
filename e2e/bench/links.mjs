// cargo xtask bench links, in headless Chromium against the release server
// and its embedded ledger on 127.0.0.1:
// - shl.create_ms: the largest sample patient (Fletcher Hyatt, 1,111
//   resources) on the Records page, from the click on "Make the link" (the
//   patient summary) to the link shown with its QR code: the IPS built in
//   the browser, encrypted as a JWE, approved with the passkey, recorded on
//   the ledger, uploaded. Median of 5, each a new link.
// - shl.create_summary_bytes: the size of that summary (its JSON).
// - shl.resolve_p50_ms / shl.resolve_p95_ms: the viewer (/view) in another
//   browser context, no account, from the click on "Open the records" to
//   the records drawn and one frame: the manifest request (the use
//   recorded on the ledger before anything is sent), the file, decryption
//   and rendering. 50 resolutions after one warm-up, of a summary of at
//   least 1 MiB: Fletcher's, with conditions added until it is that large
//   (shl.resolve_summary_bytes).
import { launch, signUp } from './common.mjs';
import { compactDecrypt, base64url } from 'jose';
import { join } from 'node:path';

const url = process.env.CHARTKEY_URL;
if (!url) throw new Error('CHARTKEY_URL is not set');
const fixtures = process.env.CHARTKEY_FIXTURES ?? join(import.meta.dirname, '..', '..', 'fixtures');
const bundle = join(fixtures, 'fhir', 'Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json');
const MiB = 1024 * 1024;
const CREATES = 5;
const RESOLVES = 50;

const browser = await launch();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs, p) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const nav = (page, name) => page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name, exact: true });

async function importFiles(page, files) {
  await page.getByTestId('file-input').setInputFiles(files);
  await page.getByTestId('import-button').click();
  await page.getByTestId('import-done').filter({ hasText: 'anchored in block' }).waitFor({ timeout: 300_000 });
}

/** Makes a summary link on the Records page; the time from the click to the link shown, and the link. */
async function makeSummaryLink(page, label) {
  await page.getByTestId('link-label').fill(label);
  return page.evaluate(timed).catch(async (e) => {
    const form = await page.getByTestId('link-form').locator('..').innerText();
    throw new Error(`${e.message}; the page says: ${form}`);
  });
}

async function timed() {
  const text = () => document.querySelector('[data-testid=link-text]')?.value ?? '';
  const before = text();
  const button = document.querySelector('[data-testid=link-make]');
  // Enabled once the chart's records are all read.
  while (button.disabled) await new Promise((resolve) => setTimeout(resolve, 50));
  const started = performance.now();
  button.click();
  await new Promise((resolve, reject) => {
    const check = () => {
      if (text() && text() !== before && document.querySelector('[data-testid=link-qr] svg')) return resolve();
      const error = document.querySelector('[data-testid=link-form] ~ [role=alert]');
      if (error && error.textContent) return reject(new Error(error.textContent));
      requestAnimationFrame(check);
    };
    check();
    setTimeout(() => reject(new Error('no link within 60 s')), 60_000);
  });
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  return { ms: performance.now() - started, link: text().trim() };
}

/** The summary a link carries, as its receiver decrypts it (npm jose): its size in bytes. */
async function summaryBytes(link) {
  const payload = JSON.parse(new TextDecoder().decode(base64url.decode(link.split('shlink:/')[1])));
  const res = await fetch(payload.url, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ recipient: 'Benchmark size check' }) });
  if (res.status !== 200) throw new Error(`manifest: HTTP ${res.status} ${await res.text()}`);
  const file = (await res.json()).files[0];
  const jwe = file.embedded ?? (await (await fetch(file.location)).text());
  const { plaintext } = await compactDecrypt(jwe, base64url.decode(payload.key));
  return plaintext.length;
}

/** Conditions with a note of about `each` bytes: to grow the summary. */
function conditions(count, each) {
  const note = 'Follow-up noted at each visit; symptoms and treatment reviewed with the patient. '.repeat(Math.ceil(each / 80)).slice(0, each);
  return {
    resourceType: 'Bundle', type: 'collection',
    entry: Array.from({ length: count }, (_, i) => ({ resource: {
      resourceType: 'Condition', id: `bench-${i}`,
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { text: `Benchmark condition ${i}` }, onsetDateTime: '2020-01-01', note: [{ text: note }],
    } })),
  };
}

const context = await browser.newContext({ baseURL: url });
const patient = await context.newPage();
await signUp(patient, url, 'Link Bench', 'Patient');
await nav(patient, 'Records').click();
await importFiles(patient, [bundle]);
await patient.getByTestId('link-form').waitFor({ timeout: 60_000 });

// ----- making a link -----
const creates = [];
let link = '';
for (let i = 0; i < CREATES; i++) {
  const made = await makeSummaryLink(patient, `Bench ${i}`);
  creates.push(made.ms);
  link = made.link;
}
const createBytes = await summaryBytes(link);

// ----- resolving a 1 MiB summary in the viewer -----
let size = createBytes;
let round = 0;
while (size < MiB) {
  const count = Math.ceil((MiB - size) / 2_000) + 10;
  await importFiles(patient, [{ name: `more-${round}.json`, mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify(conditions(count, 1_800))) }]);
  link = (await makeSummaryLink(patient, `Bench large ${round}`)).link;
  size = await summaryBytes(link);
  round += 1;
}

const stranger = await browser.newContext();
const viewer = await stranger.newPage();
await viewer.goto(link);
await viewer.getByLabel('Your name and where you are').fill('Benchmark, Mercy ER');
const resolveOnce = () => viewer.evaluate(async () => {
  const section = document.getElementById('records');
  const renders = () => Number(section.dataset.renders ?? 0);
  const before = renders();
  const error = document.getElementById('request-error');
  const started = performance.now();
  document.getElementById('request-button').click();
  await new Promise((resolve, reject) => {
    const observer = new MutationObserver(() => {
      if (renders() > before) { observer.disconnect(); resolve(); }
      else if (!error.hidden && error.textContent) { observer.disconnect(); reject(new Error(error.textContent)); }
    });
    observer.observe(document.getElementById('main'), { attributes: true, childList: true, subtree: true });
    setTimeout(() => reject(new Error('no records within 15 s')), 15_000);
  });
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const ended = performance.now();
  // Where the time went, from the viewer's marks of this resolution.
  const at = (name) => performance.getEntriesByName(name, 'mark').at(-1)?.startTime ?? NaN;
  const parts = {
    manifest: at('shl:manifest') - at('shl:start'),
    files: at('shl:fetched') - at('shl:manifest'),
    decrypt: at('shl:decrypted') - at('shl:fetched'), // and parsed, summarised
    draw: at('shl:drawn') - at('shl:decrypted'),
    frame: ended - at('shl:drawn'),
  };
  performance.clearMarks();
  return { ms: ended - started, parts };
});
await resolveOnce(); // warm-up
const resolves = [];
const parts = [];
for (let i = 0; i < RESOLVES; i++) {
  const once = await resolveOnce();
  resolves.push(once.ms);
  parts.push(once.parts);
}
const drawn = await viewer.getByTestId('viewer-record').count();

console.log(`shl.create_ms: ${median(creates).toFixed(0)}`);
console.log(`shl.create_summary_bytes: ${createBytes}`);
console.log(`shl.resolve_p50_ms: ${percentile(resolves, 50).toFixed(0)}`);
console.log(`shl.resolve_p95_ms: ${percentile(resolves, 95).toFixed(0)}`);
console.log(`shl.resolve_summary_bytes: ${size}`);
console.log(`shl.resolve_records_drawn: ${drawn}`);
for (const part of Object.keys(parts[0])) {
  console.log(`shl.resolve_${part}_p50_ms: ${percentile(parts.map((p) => p[part]), 50).toFixed(0)}`);
}
console.error(`create samples (ms): ${creates.map((x) => x.toFixed(0)).join(', ')}`);
console.error(`resolve samples (ms): ${resolves.map((x) => x.toFixed(0)).join(', ')}`);
await browser.close();
