// Every page, for every role (and signed out), with its dialogs and error
// states: axe-core finds no serious or critical violation in light or dark
// mode, nothing scrolls sideways at 390×844 (a phone), and a screenshot of
// each, light and dark, is saved in e2e/screenshots/ for review.
import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  addAuthenticator,
  confirmRecoveryPhrase,
  issueCredential,
  nameAuthority,
  nav,
  newAccount,
  patientWithRecords,
  reloadAndUnlock,
  requestVerification,
  signIn,
  signOut,
  startSignUp,
  FLOYD,
} from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

const SHOTS = join(import.meta.dirname, '..', 'screenshots');
const PHONE = { width: 390, height: 844 };

/** The checks, on whatever `page` shows now, named `who-what`. */
async function review(page: Page, name: string) {
  await page.setViewportSize(PHONE);
  mkdirSync(SHOTS, { recursive: true });
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    await page.screenshot({ path: join(SHOTS, `${name}-${colorScheme}.png`), fullPage: true });
    const { violations } = await new AxeBuilder({ page }).analyze();
    const serious = violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`).join(' | ')}`);
    expect(serious, `${name}, ${colorScheme}: axe-core`).toEqual([]);
    const sideways = await page.evaluate(() => {
      const root = document.documentElement;
      // Past the right edge and not inside a box that scrolls or clips
      // (a wide table in its own scroll region is fine; the page is not).
      const clipped = (e: Element) => {
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
          if (getComputedStyle(a).overflowX !== 'visible') return true;
        }
        return false;
      };
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 1 && !clipped(e))
        .slice(0, 3)
        .map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${(e.textContent ?? '').slice(0, 60)}`);
      return { overflow: root.scrollWidth - root.clientWidth, wide };
    });
    expect(sideways, `${name}, ${colorScheme}: scrolls sideways at 390 px`).toEqual({ overflow: 0, wide: [] });
  }
  await page.emulateMedia({ colorScheme: null });
}

test('signed out: welcome, sign-up, sign-in, restore, not found, and their errors', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Your health records, with your keys.' })).toBeVisible();
  await review(page, 'signed-out-welcome');
  await page.goto('/signup');
  await expect(page.getByLabel('Your name')).toBeVisible();
  await review(page, 'signed-out-signup');
  await page.goto('/signin');
  await expect(page.getByRole('button', { name: 'Sign in with a passkey' })).toBeVisible();
  await review(page, 'signed-out-signin');
  // No passkey on this authenticator: the sign-in fails with a message.
  await addAuthenticator(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await review(page, 'signed-out-signin-error');
  await page.goto('/restore');
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  await review(page, 'signed-out-restore');
  await page.goto('/no-such-page');
  await review(page, 'signed-out-not-found');
  await page.goto('/records');
  await review(page, 'signed-out-records');
});

test('patient, clinician and authority: every page, a share, an opened chart, the ledger and inbox', async ({ browser }) => {
  test.setTimeout(180_000);
  // Sign-up itself: the recovery phrase page.
  const patient = await (await browser.newContext({ baseURL: process.env.CHARTKEY_URL })).newPage();
  await addAuthenticator(patient);
  await startSignUp(patient, 'Tour Patient');
  await expect(patient.getByRole('heading', { name: 'Your recovery phrase' })).toBeVisible();
  await review(patient, 'patient-recovery-phrase');
  await confirmRecoveryPhrase(patient);
  await review(patient, 'patient-home');

  const authority = await newAccount(browser, 'Tour Board', 'Credentialing authority');
  await nav(authority, 'Credentials').click();
  await expect(authority.getByTestId('not-named')).toBeVisible();
  await review(authority, 'authority-credentials-not-named');
  await nameAuthority(authority);
  const clinician = await newAccount(browser, 'Dr Tour Okafor', 'Clinician');
  await nav(clinician, 'Verification').click();
  await expect(clinician.getByLabel('Licence number')).toBeVisible();
  await review(clinician, 'clinician-verification');
  await requestVerification(clinician, 'Tour Board');
  await review(clinician, 'clinician-verification-waiting');
  await reloadAndUnlock(authority);
  await expect(authority.getByTestId('pending-request')).toBeVisible();
  await review(authority, 'authority-credentials-pending');
  await issueCredential(authority, 'Dr Tour Okafor');
  await review(authority, 'authority-credentials-issued');

  // The patient's records: empty, an import's preview, the timeline, a record, trends.
  await nav(patient, 'Records').click();
  await expect(patient.getByTestId('file-input')).toBeAttached();
  await review(patient, 'patient-records-empty');
  await patient.getByTestId('file-input').setInputFiles([FLOYD]);
  await expect(patient.getByTestId('import-preview')).toBeVisible();
  await review(patient, 'patient-records-import-preview');
  await patient.getByTestId('import-button').click();
  await expect(patient.getByTestId('import-done')).toContainText('anchored in block', { timeout: 60_000 });
  await review(patient, 'patient-records-timeline');
  // The trends chart on its own, for a closer look.
  for (const colorScheme of ['light', 'dark'] as const) {
    await patient.emulateMedia({ colorScheme });
    await patient.locator('section[aria-labelledby="trends"]').screenshot({ path: join(SHOTS, `patient-trends-${colorScheme}.png`) });
  }
  await patient.emulateMedia({ colorScheme: null });
  await patient.getByTestId('summary-button').click();
  await expect(patient.getByTestId('summary')).toContainText('No information about allergies');
  await review(patient, 'patient-records-summary');
  await nav(patient, 'Records').click();
  await expect(patient.getByTestId('timeline')).toBeVisible({ timeout: 60_000 });
  await patient.getByTestId('timeline').getByRole('button').first().click();
  await expect(patient.getByTestId('record-view')).toBeVisible();
  await review(patient, 'patient-record-view');

  // Sharing: the form, a chosen clinician, the review, the active share.
  await nav(patient, 'Clinicians').click();
  await review(patient, 'patient-clinicians');
  await nav(patient, 'Sharing').click();
  await expect(patient.getByRole('heading', { name: 'Share records' })).toBeVisible({ timeout: 30_000 });
  await review(patient, 'patient-sharing');
  await patient.getByLabel('Find a clinician by name, specialty or organisation').fill('Dr Tour');
  await patient.getByRole('button', { name: 'Search', exact: true }).click();
  await patient.getByRole('button', { name: 'Choose Dr Tour Okafor' }).click();
  const records = patient.getByRole('list', { name: 'Records to share' }).getByRole('checkbox');
  for (const i of [0, 1]) await records.nth(i).check();
  await review(patient, 'patient-sharing-chosen');
  await patient.getByRole('button', { name: 'Review' }).click();
  await expect(patient.getByTestId('share-review')).toBeVisible();
  await review(patient, 'patient-sharing-review');
  // A refusal on the way shows on the review, and approving again works.
  await patient.route('**/api/shares/grant', (route) =>
    route.fulfill({ status: 429, contentType: 'application/json', body: JSON.stringify('RateLimited') }),
  );
  await patient.getByRole('button', { name: 'Approve with passkey and share' }).click();
  await expect(patient.getByRole('alert')).toHaveText('Too many attempts from your network. Wait a minute, then try again.');
  await review(patient, 'patient-sharing-refused');
  await patient.unroute('**/api/shares/grant');
  await patient.getByRole('button', { name: 'Approve with passkey and share' }).click();
  await expect(patient.getByText('Shared with Dr Tour Okafor.')).toBeVisible();
  await review(patient, 'patient-sharing-active');

  // The clinician opens the chart; the patient is told.
  await reloadAndUnlock(clinician);
  await nav(clinician, 'Shared with me').click();
  const held = clinician.getByTestId('held-share').filter({ hasText: 'Tour Patient' });
  await expect(held).toBeVisible();
  await review(clinician, 'clinician-shared-with-me');
  await held.getByRole('button', { name: "Open Tour Patient's chart" }).click();
  await expect(clinician.getByTestId('shared-chart').getByTestId('shared-record')).toHaveCount(2);
  await review(clinician, 'clinician-chart');
  await clinician.getByTestId('shared-chart').getByTestId('shared-record').first().getByRole('button', { name: 'Open' }).click();
  await expect(clinician.getByTestId('opened-record')).toContainText('Access recorded on the ledger in block');
  await review(clinician, 'clinician-record-opened');
  await expect(patient.getByTestId('toast')).toContainText('Dr Tour Okafor opened one of your records');
  await review(patient, 'patient-sharing-notice');
  await reloadAndUnlock(patient);
  await expect(patient.getByTestId('access')).toHaveCount(1);
  await review(patient, 'patient-sharing-who-viewed');

  await patient.getByRole('link', { name: /^Inbox/ }).click();
  await expect(patient.getByTestId('notice').first()).toContainText('Dr Tour Okafor opened one of your records');
  await review(patient, 'patient-inbox');
  await nav(patient, 'Account').click();
  await review(patient, 'patient-account');
  await nav(patient, 'Ledger').click();
  await expect(patient.getByTestId('ledger-blocks').locator('tbody tr').first()).toBeVisible();
  await review(patient, 'patient-ledger');
  await patient.getByRole('button', { name: 'Show transaction' }).first().click();
  await expect(patient.getByTestId('ledger-transaction')).toBeVisible();
  await review(patient, 'patient-ledger-transaction');
  await clinician.getByRole('link', { name: /^Inbox/ }).click();
  await review(clinician, 'clinician-inbox');
  await nav(clinician, 'Account').click();
  await review(clinician, 'clinician-account');
  await authority.getByRole('link', { name: /^Inbox/ }).click();
  await review(authority, 'authority-inbox');
  await nav(authority, 'Account').click();
  await review(authority, 'authority-account');
});

test('share by link: a link made, the Links page, the emergency card, emergency contacts, the viewer', async ({ browser, page }) => {
  test.setTimeout(180_000);
  const patient = page;
  await patientWithRecords(patient, 'Link Tour Patient');
  // Share by link: the link made, with its QR code; then the Links page.
  await patient.getByTestId('link-label').fill('For Dr Rao');
  await patient.getByTestId('link-passcode').fill('4711');
  await patient.getByTestId('link-make').click();
  await expect(patient.getByTestId('link-qr').locator('svg')).toBeVisible({ timeout: 30_000 });
  await review(patient, 'patient-records-link-made');
  const madeLink = (await patient.getByTestId('link-text').inputValue()).trim();
  await nav(patient, 'Links').click();
  await expect(patient.getByTestId('link')).toHaveCount(1);
  await review(patient, 'patient-links');
  // The emergency card, made.
  await patient.getByRole('link', { name: 'emergency card' }).click();
  await patient.getByTestId('card-make').click();
  await expect(patient.getByTestId('emergency-card')).toBeVisible({ timeout: 30_000 });
  await review(patient, 'patient-emergency-card');
  // Emergency contacts, with an invitation made.
  await nav(patient, 'Emergency').click();
  await patient.getByRole('button', { name: 'Make an invitation link' }).click();
  await expect(patient.getByTestId('invitation-link')).toBeVisible();
  await review(patient, 'patient-emergency');
  // The viewer, on a stranger's phone: the link read, then the records.
  const stranger = await browser.newContext();
  const viewer = await stranger.newPage();
  await viewer.goto(madeLink);
  await expect(viewer.getByLabel('Passcode')).toBeVisible();
  await review(viewer, 'viewer-link');
  await viewer.getByLabel('Your name and where you are').fill('Dr Rao, Mercy ER');
  await viewer.getByLabel('Passcode').fill('4711');
  await viewer.getByRole('button', { name: 'Open the records' }).click();
  await expect(viewer.getByTestId('viewer-records')).toBeVisible({ timeout: 30_000 });
  await review(viewer, 'viewer-records');
  await stranger.close();
});

test('verifier, a locked session and a passphrase prompt', async ({ browser, page }) => {
  const verifier = await newAccount(browser, 'Tour Insurer', 'Verifier');
  await review(verifier, 'verifier-home');
  await verifier.getByRole('link', { name: /^Inbox/ }).click();
  await review(verifier, 'verifier-inbox');
  await nav(verifier, 'Account').click();
  await review(verifier, 'verifier-account');
  await nav(verifier, 'Ledger').click();
  await review(verifier, 'verifier-ledger');
  await verifier.getByRole('button', { name: 'Lock' }).click();
  await expect(verifier.getByRole('button', { name: 'Unlock with passkey' })).toBeVisible();
  await review(verifier, 'verifier-locked');

  await addAuthenticator(page, { hasPrf: false });
  await startSignUp(page, 'Tour Passphrase');
  await expect(page.getByText("This passkey can't lock your keys by itself.")).toBeVisible();
  await review(page, 'patient-choose-passphrase');
  await page.getByLabel(/^Passphrase/).fill('a long passphrase for tests');
  await page.getByLabel('Type it again').fill('a long passphrase for tests');
  await page.getByRole('button', { name: 'Protect my keys' }).click();
  await confirmRecoveryPhrase(page);
  await signOut(page);
  await signIn(page);
  await page.getByLabel('Passphrase').fill('the wrong passphrase');
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByRole('alert')).toContainText('That passphrase is not right');
  await review(page, 'patient-passphrase-wrong');
});
