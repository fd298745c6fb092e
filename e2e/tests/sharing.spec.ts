// Sharing in the browser: a patient with an imported bundle finds a
// verified clinician, chooses three records and 7 days, reviews it in plain
// words and shares (keys wrapped and the grant signed in this browser); the
// clinician's "Shared with me" lists it and the clinician opens one record
// (the ledger records the access first); the patient sees who viewed it;
// an unverified clinician cannot be chosen; "Stop sharing" ends it at once
// and the clinician's next open is refused, saying why.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import {
  chooseEverything, FLOYD, importRecords, issueCredential, nameAuthority, nav, newAccount, reloadAndUnlock,
  requestVerification,
} from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();


test('a patient shares three chosen records for 7 days, the clinician opens one, the patient sees it, stops sharing, the next open is refused', async ({ browser }) => {
  const authority = await newAccount(browser, 'Share Test Board', 'Credentialing authority');
  await nameAuthority(authority);
  const clinician = await newAccount(browser, 'Dr Sharing Mensah', 'Clinician');
  await requestVerification(clinician, 'Share Test Board', { license: 'MD-777', specialty: 'Psychotherapy' });
  await issueCredential(authority, 'Dr Sharing Mensah');
  await newAccount(browser, 'Dr Sharing Unverified', 'Clinician');

  const patient = await newAccount(browser, 'Sharing Patient', 'Patient');
  await nav(patient, 'Records').click();
  await importRecords(patient, [FLOYD]);

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
  await patient.getByRole('button', { name: 'Approve with passkey and share' }).click();
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

  // The clinician opens one: the ledger records it first, the browser
  // verifies and decrypts.
  await held.getByRole('button', { name: "Open Sharing Patient's chart" }).click();
  const sharedChart = clinician.getByTestId('shared-chart');
  await expect(sharedChart.getByTestId('shared-record')).toHaveCount(3);
  // The chart has its own address: a reload comes back to it.
  await expect(clinician).toHaveURL(/\/sharing\/0x[0-9a-fA-F]{40}$/);
  await reloadAndUnlock(clinician);
  await expect(sharedChart.getByTestId('shared-record')).toHaveCount(3);
  const clicked = Date.now();
  await sharedChart.getByTestId('shared-record').first().getByRole('button', { name: 'Open' }).click();
  // The patient's open page is told within 2 s.
  await expect(patient.getByTestId('toast')).toContainText('Dr Sharing Mensah opened one of your records', { timeout: 2_000 });
  expect(Date.now() - clicked).toBeLessThan(2_000);
  await expect(patient.getByTestId('unread')).toHaveText('1');
  const opened = sharedChart.getByTestId('opened-record');
  await expect(opened).toHaveCount(1);
  await expect(opened).toContainText('Access recorded on the ledger in block');

  // The patient sees who viewed what.
  await reloadAndUnlock(patient);
  const access = patient.getByTestId('access');
  await expect(access).toHaveCount(1);
  await expect(access).toContainText('Dr Sharing Mensah');
  await expect(access.locator('code')).toHaveAttribute('title', /^0x[0-9a-f]{64}$/);
  const accessTx = await access.locator('code').getAttribute('title');

  // Both export as FHIR: the accesses as AuditEvents, the share as a Consent.
  const download = async (testId: string) => {
    const file = patient.waitForEvent('download');
    await patient.getByTestId(testId).click();
    return JSON.parse(readFileSync((await (await file).path())!, 'utf8'));
  };
  const audit = await download('export-audit');
  expect(audit.resourceType).toBe('Bundle');
  expect(audit.entry).toHaveLength(1);
  const event = audit.entry[0].resource;
  expect(event.resourceType).toBe('AuditEvent');
  expect(event.agent[0].who.display).toBe('Dr Sharing Mensah');
  expect(event.entity.map((e: any) => e.what.identifier?.value)).toContain(accessTx);
  const consents = await download('export-consents');
  const consent = consents.entry[0].resource;
  expect(consent.resourceType).toBe('Consent');
  expect(consent.status).toBe('active');
  expect(consent.provision.data).toHaveLength(3);
  expect(consent.provision.actor[0].reference.display).toBe('Dr Sharing Mensah');

  await patient.getByRole('link', { name: /^Inbox/ }).click();
  await expect(patient.getByTestId('notice')).toHaveCount(1);
  await expect(patient.getByTestId('notice')).toContainText('Dr Sharing Mensah opened one of your records');
  await expect(patient.getByTestId('unread')).toHaveCount(0);
  await nav(patient, 'Sharing').click();

  // Stop sharing: the clinician's next open is refused and says why, and
  // what was decrypted is gone.
  const share2 = patient.getByTestId('share').filter({ hasText: 'Dr Sharing Mensah' });
  patient.once('dialog', (dialog) => dialog.accept());
  await share2.getByRole('button', { name: 'Stop sharing' }).click();
  await expect(share2.locator('[data-state]')).toHaveText('Stopped');
  await expect(share2.getByRole('button', { name: 'Stop sharing' })).toHaveCount(0);
  await sharedChart.getByTestId('shared-record').nth(1).getByRole('button', { name: 'Open' }).click();
  await expect(sharedChart.getByRole('alert').first()).toContainText('The patient stopped sharing with you');
  await expect(sharedChart.getByTestId('share-ended')).toBeVisible();
  await expect(opened).toHaveCount(0);
  await expect(sharedChart.getByTestId('shared-record')).toHaveCount(0);
  await clinician.reload();
  await clinician.getByRole('button', { name: 'Unlock with passkey' }).click();
  await expect(clinician.getByTestId('held-share').filter({ hasText: 'Sharing Patient' })).toContainText('Stopped');
  expect(await access.count()).toBe(1);
});

test('with read and write, a clinician adds a note; the patient is told and sees it as added by the clinician', async ({ browser }) => {
  const authority = await newAccount(browser, 'Write Test Board', 'Credentialing authority');
  await nameAuthority(authority);
  const clinician = await newAccount(browser, 'Dr Writeback Adeyemi', 'Clinician');
  await requestVerification(clinician, 'Write Test Board', { license: 'GP-42', specialty: 'General practice' });
  await issueCredential(authority, 'Dr Writeback Adeyemi');

  const patient = await newAccount(browser, 'Writeback Patient', 'Patient');
  await chooseEverything(patient, 'Writeback', 'Dr Writeback Adeyemi', '1');
  // Writing needs kinds of records or everything: the box is enabled now.
  await patient.getByLabel('They may also add to my chart (notes, observations, prescriptions)').check();
  await patient.getByRole('button', { name: 'Review' }).click();
  await expect(patient.getByTestId('share-review')).toContainText('will be able to see them and add notes, observations or prescriptions to your chart: all your records');
  await patient.getByRole('button', { name: 'Approve with passkey and share' }).click();
  await expect(patient.getByText('Shared with Dr Writeback Adeyemi.')).toBeVisible();
  await expect(patient.getByTestId('share').filter({ hasText: 'Dr Writeback Adeyemi' })).toContainText('Read and add');

  await reloadAndUnlock(clinician);
  await nav(clinician, 'Shared with me').click();
  await clinician.getByRole('button', { name: "Open Writeback Patient's chart" }).click();
  const form = clinician.getByTestId('write-back');
  await form.locator('select').selectOption('note');
  await form.getByRole('textbox', { name: 'Note' }).fill('Follow-up in two weeks; sleeping better on the new dose.');
  await form.getByRole('button', { name: 'Add to chart' }).click();
  await expect(form.getByRole('status')).toContainText('Added to the chart, anchored in block');
  await expect(patient.getByTestId('toast')).toContainText('Dr Writeback Adeyemi added a record to your chart (Documents)');

  // The patient opens it: verified, decrypted, "added by" the clinician.
  await nav(patient, 'Records').click();
  const item = patient.getByTestId('timeline').locator('.timeline-item').filter({ hasText: 'Clinical note' });
  await expect(item.getByTestId('added-by')).toHaveText('added by Dr Writeback Adeyemi');
  await item.getByRole('button').click();
  await expect(patient.getByTestId('ledger-line')).toContainText('by Dr Writeback Adeyemi');
  await expect(patient.getByText('Tampering detected')).toHaveCount(0);

  // Records the patient adds later are shared too (an everything share).
  await importRecords(patient, [FLOYD]);
  const imported = Number((await patient.getByTestId('import-done').textContent())!.match(/Added (\d+) record/)![1]);
  await reloadAndUnlock(clinician);
  await clinician.getByRole('button', { name: "Open Writeback Patient's chart" }).click();
  await expect(clinician.getByTestId('shared-record')).toHaveCount(imported + 1);
  await clinician.getByTestId('shared-record').first().getByRole('button', { name: 'Open' }).click();
  await expect(clinician.getByTestId('opened-record')).toHaveCount(1);
});
