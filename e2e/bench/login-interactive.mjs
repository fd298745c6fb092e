// A cold first visit to the sign-in page, in a fresh browser context (empty
// cache) each time, five times:
// - app.first_load_gzip_bytes: what Chromium received over the wire for the
//   page until the network was idle (CDP Network.loadingFinished
//   encodedDataLength: compressed bodies and headers), median;
// - app.first_load_decoded_bytes: the same responses' bodies as decoded;
// - app.login_page_interactive_ms: navigation to an enabled "Sign in with a
//   passkey" button, median.
import { launch } from './common.mjs';

const url = process.env.CHARTKEY_URL;
if (!url) throw new Error('CHARTKEY_URL is not set');
const browser = await launch();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const samples = [];
const transfers = [];
const decoded = [];
for (let i = 0; i < 5; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const responses = new Map();
  let wire = 0;
  let bodies = 0;
  cdp.on('Network.responseReceived', (e) => {
    const encoding = e.response.headers['content-encoding'] ?? e.response.headers['Content-Encoding'] ?? 'identity';
    responses.set(e.requestId, { url: e.response.url, encoding });
  });
  cdp.on('Network.dataReceived', (e) => {
    bodies += e.dataLength;
    const r = responses.get(e.requestId);
    if (r) r.decoded = (r.decoded ?? 0) + e.dataLength;
  });
  cdp.on('Network.loadingFinished', (e) => {
    wire += e.encodedDataLength;
    const r = responses.get(e.requestId);
    if (r) r.wire = e.encodedDataLength;
  });
  const started = performance.now();
  await page.goto(`${url}/signin`);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor({ state: 'visible' });
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll('button')].find((b) => b.textContent.includes('Sign in with a passkey'));
    return b && !b.disabled;
  });
  samples.push(performance.now() - started);
  await page.waitForLoadState('networkidle');
  transfers.push(wire);
  decoded.push(bodies);
  if (i === 0) {
    for (const r of responses.values()) {
      console.error(`  ${new URL(r.url).pathname}: ${r.wire ?? '?'} bytes over the wire (${r.encoding}), ${r.decoded ?? 0} decoded`);
    }
  }
  await context.close();
}
await browser.close();
console.log(`app.first_load_gzip_bytes: ${median(transfers)}`);
console.log(`app.first_load_decoded_bytes: ${median(decoded)}`);
console.log(`app.login_page_interactive_ms: ${Math.round(median(samples))}`);
console.error(`interactive samples (ms): ${samples.map((s) => s.toFixed(0)).join(', ')}`);
console.error(`transferred samples (bytes): ${transfers.join(', ')}`);
