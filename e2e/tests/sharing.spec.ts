// Sharing in the browser: a patient with an imported bundle finds a
// verified clinician, chooses three records and 7 days, reviews it in plain
// words and shares (keys wrapped and the grant signed in this browser); the
// clinician's "Shared with me" lists it; an unverified clinician cannot be
// chosen; "Stop sharing" ends it on both sides at once.
import { test, expect } from '@playwright/test';
import { join } from 'node:path';
import { issueCredential, nameAuthority, nav, newAccount, reloadAndUnlock, requestVerification } from './helpers';

const FLOYD = join(import.meta.dirname, '..', '..', 'fixtures', 'fhir', 'Floyd_Connelly_66843218-a9f9-4f16-8347-bdc2a0d14265.json');

test('a patient shares three chosen records with a verified clinician for 7 days, then stops sharing', async ({ browser }) => {
  const authority = await newAccount(browser, 'Share Test Board', 'Credentialing authority');
  await nameAuthority(authority);
  const clinician = await newAccount(browser, 'Dr Sharing Mensah', 'Clinician');
  await requestVerification(clinician, 'Share Test Board', { license: 'MD-777', specialty: 'Psychotherapy' });
  await issueCredential(authority, 'Dr Sharing Mensah');
  await newAccount(browser, 'Dr Sharing Unverified', 'Clinician');

  const patient = await newAccount(browser, 'Sharing Patient', 'Patient');
  await nav(patient, 'Records').click();
  await patient.getByTestId('file-input').setInputFiles([FLOYD]);
  await patient.getByTestId('import-button').click();
  await expect(patient.getByTestId('import-done')).toContainText('anchored in block', { timeout: 60_000 });

  await nav(patient, 'Sharing').click();
  await expect(patient.getByRole('heading', { name: 'Share records' })).toBeVisible({ timeout: 30_000 });
  await patient.getByLabel('Find a clinician by name, specialty or organisation').fill('Dr Sharing');
  await patient.getByRole('button', { name: 'Search', exact: true }).click();
  const unverified = patient.locator('.clinician-choice').filter({ hasText: 'Dr Sharing Unverified' });
  await expect(unverified).toContainText('Records can only be shared with a verified clinician.');
  await expect(unverified.getByRole('button')).toHaveCount(0);
  await patient.getByRole('button', { name: 'Choose Dr Sharing Mensah' }).click();
  await expect(patient.getByTestId('chosen-clinician')).toContainText('Verified by Share Test Board');

  const records = patient.getByRole('list', { name: 'Records to share' }).getByRole('checkbox');
  await expect(records.first()).toBeVisible();
  for (const i of [0, 1, 2]) await records.nth(i).check();
  await expect(patient.getByText('3 chosen')).toBeVisible();
  await patient.getByLabel('For how long').selectOption('7');
  await patient.getByRole('button', { name: 'Review' }).click();
  const review = patient.getByTestId('share-review');
  await expect(review).toContainText('Dr Sharing Mensah will be able to see them: 3 records you chose, until');
  await expect(review).toContainText('That is 7 days.');
  await patient.getByRole('button', { name: 'Share', exact: true }).click();
  await expect(patient.getByText('Shared with Dr Sharing Mensah.')).toBeVisible();

  const share = patient.getByTestId('share').filter({ hasText: 'Dr Sharing Mensah' });
  await expect(share).toContainText('3 records');
  await expect(share).toContainText('Read');
  await expect(share.locator('[data-state]')).toHaveText('Active');
  await expect(share).toContainText(/[67] days left/);

  await reloadAndUnlock(clinician);
  await nav(clinician, 'Shared with me').click();
  const held = clinician.getByTestId('held-share').filter({ hasText: 'Sharing Patient' });
  await expect(held).toContainText('3 records');
  await expect(held).toContainText('Active');

  patient.once('dialog', (dialog) => dialog.accept());
  await share.getByRole('button', { name: 'Stop sharing' }).click();
  await expect(share.locator('[data-state]')).toHaveText('Stopped');
  await expect(share.getByRole('button', { name: 'Stop sharing' })).toHaveCount(0);
  await clinician.reload();
  await clinician.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(clinician.getByTestId('held-share').filter({ hasText: 'Sharing Patient' })).toContainText('Stopped');
});
