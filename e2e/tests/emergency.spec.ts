// Emergency contacts in the browser: the patient invites by a link, the
// contact accepts it signed in, the patient names them (the summary sealed
// in the patient's browser, its key wrapped to the contact, approved with
// the passkey); the contact asks, the patient refuses during the wait and
// nothing opens; named again with no wait, the contact asks and reads the
// summary. Each step shows on both sides. (The ledger's clock is moved in
// server/tests/emergency.rs; this build has no test controls.)
import { test, expect, Page } from '@playwright/test';
import { FLOYD, importRecords, nav, newAccount } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();
test.describe.configure({ mode: 'serial' });

async function invite(patient: Page, wait: string): Promise<string> {
  await nav(patient, 'Emergency').click();
  await patient.getByLabel('How long they wait after asking, during which you can refuse').selectOption({ label: wait });
  const link = patient.getByTestId('invitation-link');
  const before = (await link.count()) > 0 ? await link.inputValue() : '';
  await patient.getByRole('button', { name: 'Make an invitation link' }).click();
  await expect.poll(async () => ((await link.count()) > 0 ? link.inputValue() : '')).not.toBe(before);
  return (await link.inputValue()).trim();
}

async function accept(contact: Page, link: string) {
  // As from another app: a new page load (which locks the keys).
  await contact.goto('about:blank');
  await contact.goto(link);
  await contact.getByRole('button', { name: 'Unlock with passkey' }).click();
  await contact.getByRole('button', { name: 'Accept the invitation' }).click();
  await expect(contact.getByTestId('accept-invitation').getByRole('status')).toContainText("You accepted Pat Emergency's invitation.");
  expect(new URL(contact.url()).hash, 'the secret leaves the address bar').toBe('');
}

async function name(patient: Page) {
  await nav(patient, 'Records').click();
  await nav(patient, 'Emergency').click();
  await patient.getByRole('button', { name: 'Name Casey Family (approve with your passkey)' }).click();
  await expect(patient.getByTestId('contact').filter({ hasText: 'Casey Family' }).locator('[data-state]'))
    .toHaveText('Named', { timeout: 30_000 });
}

/** The contact's view of the patient, read again. */
async function contactSees(contact: Page) {
  await nav(contact, 'Account').click();
  await nav(contact, 'Emergency').click();
  return contact.getByTestId('named-me-pair').filter({ hasText: 'Pat Emergency' });
}

test('a contact invited by link asks; refused during the wait nothing opens; with no wait they read the summary', async ({ browser }) => {
  test.setTimeout(240_000);
  const patient = await newAccount(browser, 'Pat Emergency');
  await nav(patient, 'Records').click();
  await importRecords(patient, [FLOYD]);
  const contact = await newAccount(browser, 'Casey Family');

  // Invited with a 1-day wait, accepted by link, named with a passkey.
  await accept(contact, await invite(patient, '1 day'));
  await name(patient);
  let pair = await contactSees(contact);
  await expect(pair.locator('[data-state]')).toHaveText('Named');

  // Asked; the patient sees it and refuses during the wait.
  await pair.getByRole('button', { name: 'Ask for access' }).click();
  await expect(pair.locator('[data-state]')).toContainText('Asked; opens', { timeout: 30_000 });
  await expect(pair.getByRole('button', { name: 'Read the summary' })).toHaveCount(0);
  await nav(patient, 'Records').click();
  await nav(patient, 'Emergency').click();
  const row = patient.getByTestId('contact').filter({ hasText: 'Casey Family' });
  await expect(row.locator('[data-state]')).toContainText('Asked; opens');
  await row.getByRole('button', { name: 'Refuse access' }).click();
  await expect(row.locator('[data-state]')).toHaveText('Named', { timeout: 30_000 });
  pair = await contactSees(contact);
  await expect(pair.locator('[data-state]')).toHaveText('Named');
  await expect(pair.getByRole('button', { name: 'Read the summary' })).toHaveCount(0);

  // Removed, invited again with no wait, named again: asking opens at once.
  await row.getByRole('button', { name: 'Remove' }).click();
  await expect(row.locator('[data-state]')).toHaveText('Removed', { timeout: 30_000 });
  await accept(contact, await invite(patient, 'No wait'));
  await name(patient);
  pair = await contactSees(contact);
  await pair.getByRole('button', { name: 'Ask for access' }).click();
  await expect(pair.getByRole('button', { name: 'Read the summary' })).toBeVisible({ timeout: 30_000 });
  await pair.getByRole('button', { name: 'Read the summary' }).click();
  const summary = contact.getByTestId('contact-summary');
  await expect(summary).toBeVisible({ timeout: 30_000 });
  await expect(summary.getByRole('heading', { name: 'Problems', exact: true })).toBeVisible();
  await expect(summary).toContainText('Prediabetes');

  // Each step is in the patient's history of the pair, and the patient was told.
  await nav(patient, 'Account').click();
  await nav(patient, 'Emergency').click();
  await expect(patient.getByTestId('contact').filter({ hasText: 'Casey Family' }).first()).toContainText('read the summary');
  await patient.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: /^Inbox/ }).click();
  await expect(patient.getByText(/Casey Family/).first()).toBeVisible();
});
