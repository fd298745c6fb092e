// `chartkey migrate` in the browser: a single node (SQLite and files) with
// the three sample patients' charts, a share and an access is stopped and
// moved to PostgreSQL and S3 (moto); the server started again on the moved
// data, on the same data directory and ledger, serves the same portal: the
// patient opens a migrated record, the clinician opens the migrated share.
import { test, expect, Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, RunningServer } from '../server';
import { engines, freePort, freshBucket, freshDatabase } from '../stack';
import {
  FIXTURES, FLOYD, importRecords, issueCredential, nav, newAccount, reloadAndUnlock, requestVerification,
  shareEverything,
} from './helpers';

const shared = engines();
test.skip(!shared, 'needs PostgreSQL and moto: cargo xtask test starts them for the browser tests');

const SAMPLES = [
  ['Floyd Moved', FLOYD],
  ['Reuben Moved', join(FIXTURES, 'Reuben_Lind_1d03714f-4851-44d9-a6b6-8a2752bbe178.json')],
  ['Fletcher Moved', join(FIXTURES, 'Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json')],
] as const;

let dir: string;
let server: RunningServer | undefined;

test.afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The number of records on the Records page. */
async function recordCount(page: Page): Promise<number> {
  await nav(page, 'Records').click();
  const all = page.locator('.filters .chip').first();
  await expect(all).not.toHaveText('All (0)', { timeout: 30_000 });
  return Number((await all.textContent())!.match(/\((\d+)\)/)![1]);
}

test('a single node moved to PostgreSQL and S3 serves its records, shares and accesses', async ({ browser }) => {
  test.setTimeout(420_000);
  const e = shared!;
  dir = mkdtempSync(join(tmpdir(), 'chartkey-migrate-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  server = await startServer([], { dataDir, port });
  const url = server.url;

  // The single node: three patients with their charts; the first shares
  // everything with a verified clinician, who opens one record.
  const authority = await newAccount(browser, 'Migration Board', 'Credentialing authority', url);
  await nav(authority, 'Credentials').click();
  const command = (await authority.getByTestId('not-named').locator('code').textContent())!;
  execFileSync(process.env.CHARTKEY_BIN!, [...command.split(' ').slice(1), '--data-dir', dataDir]);
  const clinician = await newAccount(browser, 'Dr Migration Kaur', 'Clinician', url);
  await reloadAndUnlock(authority);
  await requestVerification(clinician, 'Migration Board', { license: 'MD-MIG', specialty: 'Oncology' });
  await issueCredential(authority, 'Dr Migration Kaur');
  const patients: Page[] = [];
  const counts: number[] = [];
  for (const [name, bundle] of SAMPLES) {
    const patient = await newAccount(browser, name, 'Patient', url);
    await nav(patient, 'Records').click();
    await importRecords(patient, [bundle]);
    patients.push(patient);
    counts.push(await recordCount(patient));
  }
  const floyd = patients[0];
  await shareEverything(floyd, 'Migration', 'Dr Migration Kaur', '7');
  await reloadAndUnlock(clinician);
  await nav(clinician, 'Shared with me').click();
  await clinician.getByRole('button', { name: "Open Floyd Moved's chart" }).click();
  await clinician.getByTestId('shared-record').first().getByRole('button', { name: 'Open' }).click();
  await expect(clinician.getByTestId('opened-record')).toHaveCount(1);

  // Stopped and moved; then served again from the moved data, on the same
  // port (the origin passkeys are bound to) and data directory (the ledger).
  await server.stop();
  server = undefined;
  const database = freshDatabase(e, `migrated_${Date.now()}`);
  const bucket = await freshBucket(e, `chartkey-migrated-${Date.now()}`);
  const said = execFileSync(process.env.CHARTKEY_BIN!, [
    'migrate', '--data-dir', dataDir, '--database', database, '--blob-store', bucket,
  ], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  expect(said).toMatch(/Moved \d+ rows in \d+ tables/);
  server = await startServer(['--database', database, '--blob-store', bucket], { dataDir, port });
  expect(server.url).toBe(url);

  // Each patient's chart is all there; the first opens a record, which is
  // read from S3, verified against the ledger and decrypted.
  for (const [i, patient] of patients.entries()) {
    await reloadAndUnlock(patient);
    expect(await recordCount(patient)).toBe(counts[i]);
  }
  const item = floyd.getByTestId('timeline').locator('.timeline-item').first();
  await item.getByRole('button').click();
  await expect(floyd.getByTestId('ledger-line')).toBeVisible();
  await expect(floyd.getByText('Tampering detected')).toHaveCount(0);

  // The clinician opens the migrated share; the patient sees both accesses.
  await reloadAndUnlock(clinician);
  await nav(clinician, 'Shared with me').click();
  await clinician.getByRole('button', { name: "Open Floyd Moved's chart" }).click();
  await clinician.getByTestId('shared-record').nth(1).getByRole('button', { name: 'Open' }).click();
  await expect(clinician.getByTestId('opened-record')).toHaveCount(1);
  await expect(clinician.getByTestId('opened-record')).toContainText('Access recorded on the ledger in block');
  await reloadAndUnlock(floyd);
  await nav(floyd, 'Sharing').click();
  await expect(floyd.getByTestId('access')).toHaveCount(2);
  await expect(floyd.getByTestId('share').filter({ hasText: 'Dr Migration Kaur' }).locator('[data-state]')).toHaveText('Active');
});
