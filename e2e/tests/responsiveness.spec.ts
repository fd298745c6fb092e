// The page stays responsive during a passphrase seal and unlock: Argon2id
// (64 MiB, 3 passes) runs in the key worker, so no main-thread long task
// (PerformanceObserver `longtask`) passes 200 ms. It was 239 ms with
// Argon2id on the main thread. Long tasks are wall-clock time, so this file
// runs in its own Playwright project after all the others (see
// playwright.config.ts): another test's work on the same two cores would
// stretch a 20 ms task past the limit and say nothing about this page.
import { test, expect } from '@playwright/test';
import { addAuthenticator, confirmRecoveryPhrase, ledgerAddress, longestTaskMs, signIn, signOut, startSignUp, watchLongTasks } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

test('no main-thread long task over 200 ms while sealing or unlocking with a passphrase', async ({ page }) => {
  await addAuthenticator(page, { hasPrf: false });
  await startSignUp(page, 'Responsive Patient');
  await page.getByLabel(/^Passphrase/).fill('a long passphrase for tests');
  await page.getByLabel('Type it again').fill('a long passphrase for tests');
  await watchLongTasks(page);
  await page.getByRole('button', { name: 'Protect my keys' }).click();
  await expect(page.getByRole('heading', { name: 'Your recovery phrase' })).toBeVisible();
  const sealing = await longestTaskMs(page);
  console.log(`longest main-thread task while sealing with a passphrase: ${sealing} ms`);
  expect(sealing).toBeLessThanOrEqual(200);
  await confirmRecoveryPhrase(page);
  const address = await ledgerAddress(page);

  await signOut(page);
  await signIn(page);
  await page.getByLabel('Passphrase').fill('the wrong passphrase');
  await watchLongTasks(page);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByRole('alert')).toContainText('That passphrase is not right');
  await page.getByLabel('Passphrase').fill('a long passphrase for tests');
  await page.getByRole('button', { name: 'Unlock' }).click();
  expect(await ledgerAddress(page)).toBe(address);
  const unlocking = await longestTaskMs(page);
  console.log(`longest main-thread task while unlocking with a passphrase (twice): ${unlocking} ms`);
  expect(unlocking).toBeLessThanOrEqual(200);
});
