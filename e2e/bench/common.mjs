// Shared by the browser benchmarks: Debian's Chromium, headless, and a
// sign-up through the portal with a virtual authenticator (PRF, user
// verification), ending on the account page.
import { chromium } from '@playwright/test';

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Signs up `name` as `role` on the portal at `url`, in `page`. */
export async function signUp(page, url, name, role = 'Patient') {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, hasPrf: true, automaticPresenceSimulation: true },
  });
  await page.goto(`${url}/signup`);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('radio', { name: new RegExp(role) }).check();
  await page.getByRole('button', { name: 'Create passkey and account' }).click();
  await page.getByRole('heading', { name: 'Your recovery phrase' }).waitFor();
  const words = await page.locator('.phrase .word').allTextContents();
  await page.getByLabel('I have written down all 24 words, in order.').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  for (const label of await page.locator('form label.field > span').allTextContents()) {
    await page.getByLabel(label, { exact: true }).fill(words[Number(label.replace('Word ', '')) - 1]);
  }
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
}
