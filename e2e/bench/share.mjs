// cargo xtask bench share, in headless Chromium against the release server
// and its embedded ledger on 127.0.0.1:
// - open_1mb.p50_ms / open_1mb.p95_ms: a clinician opening a shared 1 MB
//   record (a 1 MiB PDF, stored as a FHIR DocumentReference): the access
//   signed in the browser, recorded on the ledger, the envelope fetched,
//   verified against the patient's anchor and the ledger, the key unwrapped,
//   decrypted, rendered (the record on screen, then one frame). 50 opens,
//   after one warm-up, timed in the page from the click to that frame.
// - notify.p50_ms: from the clinician's click to the notice appearing on the
//   patient's open page (wall clock, same machine).
// - open_1mb.peer_ratio: p50 over 700 ms, the low end of the published peer's
//   700–1,400 ms per 1 MB record.
// Everything is set up through the portal itself: an authority named by the
// operator's command, a verified clinician, the patient's upload and share.
import { launch, signUp } from './common.mjs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const url = process.env.CHARTKEY_URL;
const bin = process.env.CHARTKEY_BIN;
const dataDir = process.env.CHARTKEY_DATA_DIR;
if (!url || !bin || !dataDir) throw new Error('CHARTKEY_URL, CHARTKEY_BIN and CHARTKEY_DATA_DIR must be set');
const OPENS = 50;

const browser = await launch();
const percentile = (xs, p) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};

async function account(name, role) {
  const context = await browser.newContext({ baseURL: url });
  const page = await context.newPage();
  await signUp(page, url, name, role);
  return page;
}
const nav = (page, name) => page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name, exact: true });
async function reloadAndUnlock(page) {
  await page.reload();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
}

// The authority, named by the operator; the clinician, verified by it.
const authority = await account('Bench Board', 'Credentialing authority');
await nav(authority, 'Credentials').click();
const command = await authority.getByTestId('not-named').locator('code').textContent();
execFileSync(bin, [...command.split(' ').slice(1), '--data-dir', dataDir]);
const clinician = await account('Dr Bench', 'Clinician');
await nav(clinician, 'Verification').click();
await clinician.getByLabel('Licence number').fill('BENCH-1');
await clinician.getByLabel('Specialty').fill('Radiology');
await clinician.getByLabel('Jurisdiction').fill('Benchland');
await clinician.getByLabel('Organisation').fill('Bench Clinic');
await clinician.getByRole('button', { name: 'Send request' }).click();
await clinician.getByTestId('verification-request').waitFor();
await reloadAndUnlock(authority);
await authority.getByTestId('pending-request').getByRole('button', { name: 'Issue credential' }).click();
await authority.locator('[data-testid=decided-request] [data-credential=verified]').waitFor();

// The patient adds a 1 MiB file and shares it for 7 days.
const patient = await account('Bench Patient', 'Patient');
await nav(patient, 'Records').click();
await patient.getByTestId('file-input').setInputFiles({ name: 'scan.pdf', mimeType: 'application/pdf', buffer: randomBytes(1024 * 1024) });
await patient.getByTestId('import-button').click();
await patient.getByTestId('import-done').filter({ hasText: 'anchored in block' }).waitFor({ timeout: 60_000 });
await nav(patient, 'Sharing').click();
await patient.getByLabel('Find a clinician by name, specialty or organisation').fill('Dr Bench');
await patient.getByRole('button', { name: 'Search', exact: true }).click();
await patient.getByRole('button', { name: 'Choose Dr Bench' }).click();
await patient.getByRole('list', { name: 'Records to share' }).getByRole('checkbox').first().check();
await patient.getByRole('button', { name: 'Review' }).click();
await patient.getByRole('button', { name: 'Approve with passkey and share' }).click();
await patient.getByText('Shared with Dr Bench.').waitFor({ timeout: 30_000 });

// The patient's page notes when each notice appears.
await patient.evaluate(() => {
  window.__notices = [];
  const region = document.querySelector('.toast-region');
  let last = null;
  new MutationObserver(() => {
    const shown = region.querySelector('[data-testid=toast]')?.dataset.notice;
    if (shown && shown !== last) {
      last = shown;
      window.__notices.push(Date.now());
    }
  }).observe(region, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-notice'] });
});

// The clinician opens it, over and over.
await reloadAndUnlock(clinician);
await nav(clinician, 'Shared with me').click();
await clinician.getByRole('button', { name: "Open Bench Patient's chart" }).click();
await clinician.getByTestId('shared-record').first().waitFor();
const openOnce = () => clinician.evaluate(async () => {
  const chart = document.querySelector('[data-testid=shared-chart]');
  const before = chart.querySelector('[data-testid=opened-record]')?.dataset.accessTx;
  const button = chart.querySelector('[data-testid=shared-record] button');
  const wall = Date.now();
  const started = performance.now();
  button.click();
  await new Promise((resolve, reject) => {
    const done = () => {
      const opened = chart.querySelector('[data-testid=opened-record]');
      if (opened && opened.dataset.accessTx !== before) {
        observer.disconnect();
        resolve();
      }
      const error = chart.querySelector('[role=alert]');
      if (error) reject(new Error(error.textContent));
    };
    const observer = new MutationObserver(done);
    observer.observe(chart, { childList: true, subtree: true, attributes: true, characterData: true });
    setTimeout(() => reject(new Error('no record within 15 s')), 15_000);
  });
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  // The button is enabled again once the page is idle.
  while (chart.querySelector('[data-testid=shared-record] button')?.disabled) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return { ms: performance.now() - started, wall };
});

await openOnce(); // warm-up
await patient.waitForFunction(() => window.__notices.length === 1, null, { timeout: 10_000 });
const opens = [];
const clicks = [];
for (let i = 0; i < OPENS; i++) {
  const { ms, wall } = await openOnce();
  opens.push(ms);
  clicks.push(wall);
  await patient.waitForFunction((n) => window.__notices.length >= n, i + 2, { timeout: 10_000 });
}
const noticed = (await patient.evaluate(() => window.__notices)).slice(1);
const notify = noticed.map((t, i) => t - clicks[i]);

const p50 = percentile(opens, 50);
console.log(`open_1mb.p50_ms: ${p50.toFixed(0)}`);
console.log(`open_1mb.p95_ms: ${percentile(opens, 95).toFixed(0)}`);
console.log(`notify.p50_ms: ${percentile(notify, 50).toFixed(0)}`);
console.log(`open_1mb.peer_ratio: ${(p50 / 700).toFixed(3)}`);
console.error(`open samples (ms): ${opens.map((x) => x.toFixed(0)).join(', ')}`);
console.error(`notify samples (ms): ${notify.join(', ')}`);
await browser.close();
