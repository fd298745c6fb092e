// app.login_page_interactive_ms: navigation to an enabled "Sign in with a
// passkey" button, fresh browser context (empty cache) each time, median of 5.
import { launch } from './common.mjs';

const url = process.env.CHARTKEY_URL;
if (!url) throw new Error('CHARTKEY_URL is not set');
const browser = await launch();
const samples = [];
for (let i = 0; i < 5; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const started = performance.now();
  await page.goto(`${url}/signin`);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor({ state: 'visible' });
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll('button')].find((b) => b.textContent.includes('Sign in with a passkey'));
    return b && !b.disabled;
  });
  samples.push(performance.now() - started);
  await context.close();
}
await browser.close();
samples.sort((a, b) => a - b);
console.log(`app.login_page_interactive_ms: ${Math.round(samples[2])}`);
console.error(`samples: ${samples.map((s) => s.toFixed(0)).join(', ')}`);
