// Keyboard only: sign up, sign out and in, import a bundle, share with a
// clinician, the clinician opens a record, the patient stops sharing. Every
// step moves focus with Tab and acts with Enter, Space or typed keys; the
// page counts pointer events and must see none.
import { test, expect, Browser, Locator, Page } from '@playwright/test';
import {
  addAuthenticator,
  confirmRecoveryPhrase,
  issueCredential,
  nameAuthority,
  newAccount,
  requestVerification,
  FLOYD,
} from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();


/** A context whose pages count trusted pointer and mouse events. */
async function keyboardPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ baseURL: process.env.CHARTKEY_URL });
  await context.addInitScript(() => {
    const w = window as unknown as { __pointer: string[] };
    w.__pointer = [];
    for (const type of ['pointerdown', 'mousedown', 'mouseup', 'contextmenu']) {
      addEventListener(type, (e) => e.isTrusted && w.__pointer.push(type), true);
    }
  });
  const page = await context.newPage();
  await addAuthenticator(page);
  return page;
}

/** No pointer event reached this document. */
async function expectNoPointer(page: Page) {
  expect(await page.evaluate(() => (window as unknown as { __pointer: string[] }).__pointer)).toEqual([]);
}

/** Presses Tab (or Shift+Tab, when `target` comes before the focus, as a
 *  keyboard user would) until `target` has focus. */
async function tabTo(page: Page, target: Locator) {
  await expect(target).toBeVisible();
  for (let i = 0; i < 150; i++) {
    const where = await target.evaluate((e) => {
      const focused = document.activeElement;
      if (focused && (e === focused || e.contains(focused))) return 'here';
      const after = focused && focused !== document.body && e.compareDocumentPosition(focused) & Node.DOCUMENT_POSITION_FOLLOWING;
      return after ? 'before' : 'after';
    });
    if (where === 'here') return;
    await page.keyboard.press(where === 'before' ? 'Shift+Tab' : 'Tab');
  }
  throw new Error(`Tab never reached ${target}`);
}

async function press(page: Page, target: Locator, key = 'Enter') {
  await tabTo(page, target);
  await page.keyboard.press(key);
}

async function typeInto(page: Page, target: Locator, text: string) {
  await tabTo(page, target);
  await page.keyboard.type(text);
}

function menu(page: Page, name: string | RegExp) {
  return page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name });
}

/** Sign-up and the recovery phrase, by keyboard. */
async function signUp(page: Page, name: string) {
  await page.goto('/signup');
  await typeInto(page, page.getByLabel('Your name'), name);
  await press(page, page.getByRole('radio', { name: /Patient/ }), 'Space');
  await press(page, page.getByRole('button', { name: 'Create passkey and account' }));
  await expect(page.getByRole('heading', { name: 'Your recovery phrase' })).toBeVisible();
  const words = await page.locator('.phrase .word').allTextContents();
  await press(page, page.getByLabel('I have written down all 24 words, in order.'), 'Space');
  await press(page, page.getByRole('button', { name: 'Continue' }));
  const labels = await page.locator('form label.field > span').allTextContents();
  expect(labels).toHaveLength(3);
  for (const label of labels) {
    await typeInto(page, page.getByLabel(label, { exact: true }), words[Number(label.replace('Word ', '')) - 1]);
  }
  await press(page, page.getByRole('button', { name: 'Confirm' }));
  await expect(page.getByRole('heading', { name: 'Your account' })).toBeVisible();
}

/** Reloads (a new document: its pointer count starts again) and unlocks. */
async function reloadAndUnlock(page: Page) {
  await page.reload();
  await press(page, page.getByRole('button', { name: 'Unlock with passkey' }));
}

test('keyboard only: sign up, sign in, import, share, a clinician opens a record, stop sharing', async ({ browser }) => {
  test.setTimeout(150_000);
  const authority = await newAccount(browser, 'Keys Board', 'Credentialing authority');
  await nameAuthority(authority);

  // The clinician signs up by keyboard too; verification is the authority's business.
  const clinician = await keyboardPage(browser);
  await clinician.goto('/signup');
  await typeInto(clinician, clinician.getByLabel('Your name'), 'Dr Keys Adeyemi');
  // Arrow keys move through a radio group.
  await tabTo(clinician, clinician.getByRole('radio', { name: /Patient/ }));
  await clinician.keyboard.press('ArrowDown');
  await expect(clinician.getByRole('radio', { name: /Clinician/ })).toBeChecked();
  await press(clinician, clinician.getByRole('button', { name: 'Create passkey and account' }));
  await expect(clinician.getByRole('heading', { name: 'Your recovery phrase' })).toBeVisible();
  await expectNoPointer(clinician);
  await confirmRecoveryPhrase(clinician);
  await requestVerification(clinician, 'Keys Board');
  await issueCredential(authority, 'Dr Keys Adeyemi');

  // The patient: sign up, sign out, sign in.
  const patient = await keyboardPage(browser);
  await signUp(patient, 'Keys Patient');
  await press(patient, patient.getByRole('button', { name: 'Sign out' }));
  await expect(patient.getByRole('heading', { name: 'Your health records, with your keys.' })).toBeVisible();
  await expectNoPointer(patient);
  await patient.goto('/signin');
  await press(patient, patient.getByRole('button', { name: 'Sign in with a passkey' }));
  await expect(patient.getByRole('heading', { name: 'Your account' })).toBeVisible();

  // Import a bundle: the file chooser opens from the keyboard.
  await press(patient, menu(patient, 'Records'));
  const chooser = patient.waitForEvent('filechooser');
  await press(patient, patient.getByTestId('file-input'), 'Space');
  await (await chooser).setFiles([FLOYD]);
  await expect(patient.getByTestId('import-preview')).toBeVisible();
  await press(patient, patient.getByTestId('import-button'));
  await expect(patient.getByTestId('import-done')).toContainText('anchored in block', { timeout: 60_000 });

  // Share two records with the clinician.
  await press(patient, menu(patient, 'Sharing'));
  await expect(patient.getByRole('heading', { name: 'Share records' })).toBeVisible({ timeout: 30_000 });
  await typeInto(patient, patient.getByLabel('Find a clinician by name, specialty or organisation'), 'Dr Keys');
  await patient.keyboard.press('Enter');
  await press(patient, patient.getByRole('button', { name: 'Choose Dr Keys Adeyemi' }));
  await expect(patient.getByTestId('chosen-clinician')).toContainText('Verified by Keys Board');
  const records = patient.getByRole('list', { name: 'Records to share' }).getByRole('checkbox');
  for (const i of [0, 1]) await press(patient, records.nth(i), 'Space');
  await expect(patient.getByText('2 chosen')).toBeVisible();
  await press(patient, patient.getByRole('button', { name: 'Review' }));
  await expect(patient.getByTestId('share-review')).toContainText('Dr Keys Adeyemi will be able to see them');
  await press(patient, patient.getByRole('button', { name: 'Approve with passkey and share' }));
  await expect(patient.getByText('Shared with Dr Keys Adeyemi.')).toBeVisible();

  // The clinician opens one record (after a reload: the mouse-driven
  // verification above was another document).
  await reloadAndUnlock(clinician);
  await press(clinician, menu(clinician, 'Shared with me'));
  await press(clinician, clinician.getByRole('button', { name: "Open Keys Patient's chart" }));
  const chart = clinician.getByTestId('shared-chart');
  await expect(chart.getByTestId('shared-record')).toHaveCount(2);
  await press(clinician, chart.getByTestId('shared-record').first().getByRole('button', { name: 'Open' }));
  await expect(clinician.getByTestId('opened-record')).toContainText('Access recorded on the ledger in block');
  await expect(patient.getByTestId('toast')).toContainText('Dr Keys Adeyemi opened one of your records');

  // The patient stops sharing (the confirmation is the browser's own dialog).
  patient.once('dialog', (dialog) => dialog.accept());
  const share = patient.getByTestId('share').filter({ hasText: 'Dr Keys Adeyemi' });
  await press(patient, share.getByRole('button', { name: /Stop sharing/ }));
  await expect(share.locator('[data-state]')).toHaveText('Stopped', { timeout: 30_000 });

  await expectNoPointer(patient);
  await expectNoPointer(clinician);
});
