// app.signin_to_records_ms: a patient with the 145-resource sample imported
// signs in from the Records page's address (/signin?next=/records) with an
// empty browser cache: from the click on "Sign in with a passkey" to the
// Records heading and the timeline rendered (the first day's entries drawn),
// checked on every animation frame; median of 5. The passkey prompt is the
// virtual authenticator's, which answers at once.
// app.portal_gzip_bytes: what Chromium received over the wire for the portal
// (the module the shell loads on that click: its glue and wasm, CDP
// Network.loadingFinished encodedDataLength), median of the same 5.
import { launch, signUp } from './common.mjs';
import { join } from 'node:path';

const url = process.env.CHARTKEY_URL;
if (!url) throw new Error('CHARTKEY_URL is not set');
const fixtures = process.env.CHARTKEY_FIXTURES ?? join(import.meta.dirname, '..', '..', 'fixtures');
const sample = join(fixtures, 'fhir', 'Floyd_Connelly_66843218-a9f9-4f16-8347-bdc2a0d14265.json');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const frame = { polling: 'raf', timeout: 60_000 };

const browser = await launch();
const context = await browser.newContext();
const page = await context.newPage();
await signUp(page, url, 'Bench Signin Patient');
await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Records' }).click();
await page.getByTestId('file-input').setInputFiles(sample);
await page.getByTestId('import-button').click();
await page.waitForFunction(
  () => document.querySelector('[data-testid="import-done"]')?.textContent.includes('Added 145 records'),
  null,
  frame,
);
const cdp = await context.newCDPSession(page);
await cdp.send('Network.enable');
const portalDir = new URL(await page.locator('meta[name="chartkey-app"]').getAttribute('content'), url).pathname
  .replace(/[^/]*$/, '');
const requests = new Map();
let portalBytes = 0;
let portalFiles = 0;
cdp.on('Network.responseReceived', (e) => requests.set(e.requestId, new URL(e.response.url).pathname));
cdp.on('Network.loadingFinished', (e) => {
  if (!requests.get(e.requestId)?.startsWith(portalDir)) return;
  portalBytes += e.encodedDataLength;
  portalFiles += 1;
});
const portal = [];

const samples = [];
for (let i = 0; i < 5; i++) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Your health records, with your keys.' }).waitFor();
  await cdp.send('Network.clearBrowserCache');
  await page.goto(`${url}/signin?next=/records`);
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll('button')].find((b) => b.textContent.includes('Sign in with a passkey'));
    return b && !b.disabled;
  }, null, frame);
  await cdp.send('Network.clearBrowserCache');
  portalBytes = 0;
  portalFiles = 0;
  const started = Date.now();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('h1')].some((h) => h.textContent === 'Records') &&
      document.querySelector('[data-testid="timeline"] button'),
    null,
    frame,
  );
  samples.push(Date.now() - started);
  // The network events may trail the page by a moment: the glue and the wasm.
  for (let waited = 0; portalFiles < 2 && waited < 5_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  if (portalFiles < 2) throw new Error(`the portal's files were not fetched afresh (${portalFiles} seen)`);
  portal.push(portalBytes);
}
await browser.close();
console.log(`app.signin_to_records_ms: ${median(samples)}`);
console.log(`app.portal_gzip_bytes: ${median(portal)}`);
console.error(`sign-in to records samples (ms): ${samples.join(', ')}`);
console.error(`portal transferred samples (bytes): ${portal.join(', ')}`);
