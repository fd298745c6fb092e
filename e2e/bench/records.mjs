// cargo xtask bench records, in headless Chromium against the release server:
// - wasm.encrypt_mb_per_s: the record envelope (XChaCha20-Poly1305 STREAM, in
//   Rust compiled to WebAssembly) sealing 64 MiB fed in 1 MiB slices;
// - webcrypto.aes_gcm_mb_per_s: the browser's native AES-256-GCM on the same
//   64 MiB in 1 MiB calls, in the same page, same run;
// - wasm.encrypt_ratio: the first over the second;
// - import.fletcher_hyatt_ms: the 3.9 MB, 1,111-resource bundle, from the file
//   chosen to every record anchored (the page's "anchored in block" notice),
//   median of 3, each by a new patient.
import { launch, signUp } from './common.mjs';
import { join } from 'node:path';

const url = process.env.CHARTKEY_URL;
if (!url) throw new Error('CHARTKEY_URL is not set');
const fixtures = process.env.CHARTKEY_FIXTURES ?? join(import.meta.dirname, '..', '..', 'fixtures');
const bundle = join(fixtures, 'fhir', 'Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json');
const MiB = 1024 * 1024;

const browser = await launch();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ----- encryption, side by side -----
{
  const page = await browser.newPage();
  await page.goto(`${url}/`);
  // The sealing code is the portal's (the module the shell loads after
  // sign-in): load it the same way, from the address the page names.
  await page.waitForSelector('meta[name="chartkey-app"]', { state: 'attached' });
  await page.evaluate(async () => {
    const portal = await import(document.querySelector('meta[name="chartkey-app"]').content);
    await portal.default();
    window.chartkeyBenchSeal = portal.chartkey_bench_seal;
  });
  const result = await page.evaluate(async ({ total, slice }) => {
    const wasm = () => window.chartkeyBenchSeal(total, slice);
    const aes = async () => {
      const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt']);
      const data = new Uint8Array(slice).fill(0x5a);
      const started = performance.now();
      for (let done = 0; done < total; done += slice) {
        const iv = crypto.getRandomValues(new Uint8Array(12));
        await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, data);
      }
      return performance.now() - started;
    };
    // One warm-up each, then the best of 3 (steady state, not first-call costs).
    wasm();
    await aes();
    const w = [], a = [];
    for (let i = 0; i < 3; i++) {
      w.push(wasm());
      a.push(await aes());
    }
    return { wasm: Math.min(...w), aes: Math.min(...a) };
  }, { total: 64 * MiB, slice: MiB });
  const wasmRate = 64 / (result.wasm / 1000);
  const aesRate = 64 / (result.aes / 1000);
  console.log(`wasm.encrypt_mb_per_s: ${wasmRate.toFixed(1)}`);
  console.log(`webcrypto.aes_gcm_mb_per_s: ${aesRate.toFixed(1)}`);
  console.log(`wasm.encrypt_ratio: ${(wasmRate / aesRate).toFixed(3)}`);
  await page.close();
}

// ----- a whole import -----
const imports = [];
for (let i = 0; i < 3; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signUp(page, url, `Bench Patient ${i + 1}`);
  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Records' }).click();
  await page.getByTestId('file-input').waitFor({ state: 'attached' });
  // Checked on every animation frame in the page: Playwright's own waits
  // retry at growing intervals (up to 500 ms apart), which would round the
  // time up by whatever interval the moment fell into.
  const frame = { polling: 'raf', timeout: 120_000 };
  const started = Date.now();
  await page.getByTestId('file-input').setInputFiles(bundle);
  await page.waitForFunction(() => document.querySelector('[data-testid="import-button"]'), null, frame);
  await page.getByTestId('import-button').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="import-done"]')?.textContent.includes('anchored in block'),
    null,
    frame,
  );
  imports.push(Date.now() - started);
  const text = await page.getByTestId('import-done').textContent();
  if (!text.includes('Added 1111 records')) throw new Error(`unexpected result: ${text}`);
  await context.close();
}
console.log(`import.fletcher_hyatt_ms: ${median(imports)}`);
console.error(`import samples (ms): ${imports.join(', ')}`);
await browser.close();
