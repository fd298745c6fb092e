// Acceptance 4: passkey accounts whose keys live only in the browser.
import { test, expect } from '@playwright/test';
import {
  addAuthenticator,
  confirmRecoveryPhrase,
  credentialCount,
  expectNoBrowserStorage,
  ledgerAddress,
  signIn,
  signOut,
  startSignUp,
} from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

test('patient signs up, confirms the phrase, signs out, signs in and unlocks after reload with the same address', async ({ page }) => {
  const auth = await addAuthenticator(page);
  await startSignUp(page, 'Ada Lovelace');
  await confirmRecoveryPhrase(page);
  const address = await ledgerAddress(page);
  expect(await credentialCount(auth)).toBe(1);
  await expect(page.getByTestId('directory-status')).toContainText('verified in this browser');
  await expect(page.getByTestId('key-fingerprint')).toHaveText(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
  await expect(page.getByTestId('passkeys').locator('tbody tr')).toHaveCount(1);
  // Sealed by the passkey's PRF: no passphrase was asked for or needed.
  await expect(page.getByTestId('passkeys').locator('tbody tr td').nth(3)).toHaveText('Passkey');
  await expect(page.getByTestId('passkeys').getByRole('button', { name: 'Remove' })).toBeDisabled();
  await expectNoBrowserStorage(page);

  await signOut(page);
  await signIn(page);
  expect(await ledgerAddress(page)).toBe(address);

  // A reload forgets the keys; the session remains, the passkey unlocks.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Unlock your keys' })).toBeVisible();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
  expect(await ledgerAddress(page)).toBe(address);

  // Lock by hand.
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Unlock your keys' })).toBeVisible();
  await expectNoBrowserStorage(page);
});

test('links, back and forward move between pages without reloading', async ({ page }) => {
  await page.goto('/');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await expect(page).toHaveURL(/\/signup$/);
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeVisible();
  // Focus moves to the new page's heading, and the tab's title names it.
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeFocused();
  await expect(page).toHaveTitle('Create your account · Chartkey');
  await page.getByRole('link', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeFocused();
  await page.goBack();
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeFocused();
  await page.goBack();
  await expect(page.getByRole('heading', { name: 'Your health records, with your keys.' })).toBeVisible();
  await page.goto('/no-such-page');
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});

test('an authenticator with no Chartkey passkey gets a clear error', async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await addAuthenticator(page);
  await signIn(page);
  await expect(page.getByRole('alert')).toContainText('No passkey was used');
  await expect(page.getByRole('button', { name: 'Sign in with a passkey' })).toBeEnabled();
  await context.close();
});

test('a passkey the server does not know is refused with a clear error', async ({ page }) => {
  await addAuthenticator(page);
  // Create a passkey, then abandon the sign-up before the server stores it:
  // the credential exists on the authenticator but not on the server.
  await page.route('**/api/signup/finish', (route) => route.abort());
  await startSignUp(page, 'Never Finished');
  await expect(page.getByRole('alert')).toBeVisible();
  await page.unroute('**/api/signup/finish');
  await signIn(page);
  await expect(page.getByRole('alert')).toContainText('not registered with Chartkey');
});

test('without PRF, the passphrase path signs up and signs in again', async ({ page }) => {
  await addAuthenticator(page, { hasPrf: false });
  await startSignUp(page, 'Grace Hopper');
  await expect(page.getByText("This passkey can't lock your keys by itself.")).toBeVisible();
  await page.getByLabel(/^Passphrase/).fill('short');
  await page.getByLabel('Type it again').fill('short');
  await page.getByRole('button', { name: 'Protect my keys' }).click();
  await expect(page.getByRole('alert')).toContainText('at least 12 characters');
  await page.getByLabel(/^Passphrase/).fill('a long passphrase for tests');
  await page.getByLabel('Type it again').fill('a long passphrase for tests');
  await page.getByRole('button', { name: 'Protect my keys' }).click();
  await confirmRecoveryPhrase(page);
  const address = await ledgerAddress(page);
  await expect(page.getByTestId('passkeys')).toContainText('Passkey and passphrase');

  await signOut(page);
  await signIn(page);
  await page.getByLabel('Passphrase').fill('the wrong passphrase');
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByRole('alert')).toContainText('That passphrase is not right');
  await page.getByLabel('Passphrase').fill('a long passphrase for tests');
  await page.getByRole('button', { name: 'Unlock' }).click();
  expect(await ledgerAddress(page)).toBe(address);

  // A page from before a deploy finds its build's worker gone: it says so.
  await signOut(page);
  await signIn(page);
  await page.route('**/chartkey-kdf-worker-*/**', (route) => route.fulfill({ status: 404, body: 'Not found' }));
  await page.getByLabel('Passphrase').fill('a long passphrase for tests');
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByRole('alert')).toContainText('key worker did not start. Reload the page');
  await page.unroute('**/chartkey-kdf-worker-*/**');
  await page.getByRole('button', { name: 'Unlock' }).click();
  expect(await ledgerAddress(page)).toBe(address);
});

test('restore with the recovery phrase on a new authenticator gives the same address', async ({ page, browser }) => {
  await addAuthenticator(page);
  await startSignUp(page, 'Mary Seacole');
  const words = await confirmRecoveryPhrase(page);
  const address = await ledgerAddress(page);

  const context = await browser.newContext();
  const newDevice = await context.newPage();
  const auth = await addAuthenticator(newDevice);
  await newDevice.goto('/restore');
  await newDevice.getByLabel('Recovery phrase').fill(words.slice(0, 23).join(' '));
  await newDevice.getByRole('button', { name: 'Restore and create a new passkey' }).click();
  await expect(newDevice.getByRole('alert')).toContainText('has 23');
  await newDevice.getByLabel('Recovery phrase').fill(words.join('  ').toUpperCase());
  await newDevice.getByRole('button', { name: 'Restore and create a new passkey' }).click();
  expect(await ledgerAddress(newDevice)).toBe(address);
  expect(await credentialCount(auth)).toBe(1);
  await expect(newDevice.getByTestId('passkeys').locator('tbody tr')).toHaveCount(2);

  // The new passkey signs in on its own.
  await signOut(newDevice);
  await signIn(newDevice);
  expect(await ledgerAddress(newDevice)).toBe(address);
  await context.close();
});

test('the account page checks someone else\'s signed keys', async ({ page, browser }) => {
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await addAuthenticator(otherPage);
  await startSignUp(otherPage, 'Dr Jane Doe', 'Clinician');
  await confirmRecoveryPhrase(otherPage);
  const clinicianAddress = await ledgerAddress(otherPage);
  const fingerprint = await otherPage.getByTestId('key-fingerprint').textContent();
  await other.close();

  await addAuthenticator(page);
  await startSignUp(page, 'Pat Patient');
  await confirmRecoveryPhrase(page);
  await ledgerAddress(page);
  await page.getByRole('textbox', { name: 'Ledger address' }).fill(clinicianAddress);
  const lookup = page.waitForResponse('**/api/directory/lookup');
  await page.getByRole('button', { name: 'Check' }).click();
  const genuine = await (await lookup).json();
  const result = page.getByTestId('lookup-result');
  await expect(result).toContainText('Dr Jane Doe');
  await expect(result).toContainText('Clinician');
  await expect(result).toContainText(fingerprint!);
  await expect(result).toContainText(clinicianAddress);

  // A server that answers with someone else's (validly signed) entry is caught.
  const own = await ledgerAddress(page);
  await page.route('**/api/directory/lookup', (route) =>
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(genuine) }),
  );
  await page.getByRole('textbox', { name: 'Ledger address' }).fill(own);
  await page.getByRole('button', { name: 'Check' }).click();
  await expect(page.getByRole('alert')).toContainText('keys of a different account');
});

test('add a second passkey from the account page, sign in with it, remove the first', async ({ page }) => {
  const first = await addAuthenticator(page);
  await startSignUp(page, 'Nina Two-Keys');
  await confirmRecoveryPhrase(page);
  const address = await ledgerAddress(page);

  // A second device: the first authenticator goes away, a new one arrives.
  await first.cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: first.id });
  const second = await addAuthenticator(page);
  await page.getByLabel('Name for the new passkey').fill('Work laptop');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  const rows = page.getByTestId('passkeys').locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: 'Work laptop' })).toHaveCount(1);
  expect(await credentialCount(second)).toBe(1);

  // Sign in with the new passkey, then remove the first one.
  await signOut(page);
  await signIn(page);
  expect(await ledgerAddress(page)).toBe(address);
  await expect(rows.filter({ hasText: 'Signed in with this one' })).toContainText('Work laptop');
  page.once('dialog', (d) => d.accept());
  await rows.filter({ hasNotText: 'Work laptop' }).getByRole('button', { name: 'Remove' }).click();
  await expect(rows).toHaveCount(1);
  await expect(rows).toContainText('Work laptop');
  await expect(rows.getByRole('button', { name: 'Remove' })).toBeDisabled();
});

test("signing in from a page's address comes back to that page, and only to this app's pages", async ({ page }) => {
  await addAuthenticator(page);
  await startSignUp(page, 'Rosalind Franklin');
  await confirmRecoveryPhrase(page);
  await ledgerAddress(page);
  await signOut(page);
  await page.goto('/records');
  await page.getByRole('link', { name: 'Sign in with a passkey' }).click();
  await expect(page).toHaveURL(/\/signin\?next=\/records$/);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Records', exact: true })).toBeVisible();
  await expect(page).toHaveURL(/\/records$/);
  await signOut(page);
  await page.goto('/signin?next=//evil.example/records');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Your account' })).toBeVisible();
  expect(new URL(page.url()).pathname).toBe('/');
});
