// Credentials in the browser: an authority the operator has not named sees
// the command to send; once named (the real `chartkey authority add` on the
// running server's data directory), it issues the credential a clinician
// asked for, signed with its key; a patient finds the clinician with the
// ledger's badge; the authority revokes it and the badge says so.
import { test, expect } from '@playwright/test';
import { issueCredential, nameAuthority, nav, newAccount, reloadAndUnlock, requestVerification } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

test('an authority named by the operator verifies a clinician, a patient sees the badge, revoking shows at once', async ({ browser }) => {
  const authority = await newAccount(browser, 'Harbour Medical Board', 'Credentialing authority');
  await nav(authority, 'Credentials').click();
  await expect(authority.getByTestId('not-named')).toBeVisible();

  const clinician = await newAccount(browser, 'Dr Imani Osei', 'Clinician');
  await nav(clinician, 'Verification').click();
  await expect(clinician.getByTestId('my-badge')).toHaveText('Not verified');

  await nameAuthority(authority);
  await reloadAndUnlock(clinician);
  await requestVerification(clinician, 'Harbour Medical Board', { license: 'PSY-20417' });

  // The desk lists the request with its details and a default expiry.
  await reloadAndUnlock(authority);
  const request = authority.getByTestId('pending-request').filter({ hasText: 'Dr Imani Osei' });
  await expect(request).toContainText('PSY-20417');
  await expect(request.getByLabel('Valid until')).toHaveValue(/^\d{4}-\d{2}-\d{2}$/);
  const year = new Date().getUTCFullYear() + 2;
  const decided = await issueCredential(authority, 'Dr Imani Osei', `${year}-06-30`);
  await expect(decided).toContainText('Verified by Harbour Medical Board until');

  // A patient finds the clinician by specialty, with the ledger's badge.
  const patient = await newAccount(browser, 'Noor Haddad', 'Patient');
  await nav(patient, 'Clinicians').click();
  await patient.getByLabel('Name, specialty or organisation').fill('psychiatry');
  await patient.getByLabel('Name, specialty or organisation').press('Enter');
  const found = patient.getByTestId('clinician').filter({ hasText: 'Dr Imani Osei' });
  await expect(found).toContainText('Psychiatry · Harbourside Clinic · Massachusetts, US');
  await expect(found.locator('[data-credential]')).toHaveAttribute('data-credential', 'verified');
  await expect(found).toContainText('Verified by Harbour Medical Board until');
  await expect(found).toContainText(String(year));

  // Revoked: the desk and the patient's next search say so.
  authority.once('dialog', (dialog) => dialog.accept());
  await decided.getByRole('button', { name: 'Revoke' }).click();
  await expect(decided.locator('[data-credential]')).toHaveAttribute('data-credential', 'revoked');
  await patient.getByRole('button', { name: 'Search' }).click();
  await expect(found).toContainText('Credential revoked by Harbour Medical Board');

  await reloadAndUnlock(clinician);
  await expect(clinician.getByTestId('my-badge')).toHaveText('Credential revoked by Harbour Medical Board');
});
