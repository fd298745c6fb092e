// Two replicas behind nginx, as a hospital runs Chartkey: one origin, one
// PostgreSQL database, one S3 bucket (moto) and one external chain (anvil),
// each replica with its own data directory and relayer key. A patient signs
// up through replica A and signs in through replica B; a clinician's open
// on A reaches the patient's page on B as a live notice within 2 s.
import { test, expect, Browser, BrowserContext, Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, RunningServer } from '../server';
import {
  ANVIL_KEYS, engines, freePort, freshBucket, freshDatabase, Nginx, startNginx, writeKey,
} from '../stack';
import {
  addAuthenticator, confirmRecoveryPhrase, FLOYD, importRecords, issueCredential, ledgerAddress, nav,
  reloadAndUnlock, requestVerification, shareEverything, signIn, signOut, startSignUp,
} from './helpers';

const shared = engines();
test.skip(!shared, 'needs PostgreSQL, moto and anvil: cargo xtask test starts them for the browser tests');

let dir: string;
let replicas: Record<'a' | 'b', { server: RunningServer; port: number; dataDir: string }>;
let nginx: Nginx;
let origin: string;
let database: string;

test.beforeAll(async () => {
  const e = shared!;
  dir = mkdtempSync(join(tmpdir(), 'chartkey-replicas-'));
  database = freshDatabase(e, `replicas_${Date.now()}`);
  const bucket = await freshBucket(e, `chartkey-replicas-${Date.now()}`);
  const [nginxPort, portA, portB] = [await freePort(), await freePort(), await freePort()];
  origin = `http://localhost:${nginxPort}`;
  const common = ['--origin', origin, '--database', database, '--blob-store', bucket, '--chain-rpc', e.chain,
    '--trusted-proxy', '127.0.0.1'];
  // A deploys the contracts (its relayer pays) and holds the administrator
  // key that names authorities; B joins A's contracts.
  const dataA = join(dir, 'a');
  writeKey(join(dataA, 'keys', 'relayer.key'), ANVIL_KEYS[0]);
  writeKey(join(dataA, 'keys', 'admin.key'), ANVIL_KEYS[2]);
  const a = await startServer(common, { dataDir: dataA, port: portA });
  const dataB = join(dir, 'b');
  writeKey(join(dataB, 'keys', 'relayer.key'), ANVIL_KEYS[1]);
  const b = await startServer([...common, '--contracts', join(dataA, 'contracts.json')], { dataDir: dataB, port: portB });
  replicas = { a: { server: a, port: portA, dataDir: dataA }, b: { server: b, port: portB, dataDir: dataB } };
  nginx = await startNginx(nginxPort, { a: portA, b: portB });
});

test.afterAll(async () => {
  const stopped = await Promise.allSettled([nginx?.stop(), replicas?.a.server.stop(), replicas?.b.server.stop()]);
  const failed = stopped.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason);
  // Kept, with the replicas' logs, when one of them had died.
  if (failed.length > 0) throw new Error(`replicas: ${failed.join('; ')}`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A browser context on the portal (through nginx), its requests sent to `replica`. */
async function pinnedContext(browser: Browser, replica: 'a' | 'b'): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL: origin });
  await pin(context, replica);
  return context;
}

async function pin(context: BrowserContext, replica: 'a' | 'b') {
  await context.addCookies([{ name: 'chartkey_replica', value: replica, url: origin }]);
}

/** The replica that answered `page`'s context last asked. */
async function servedBy(page: Page): Promise<string> {
  const answer = await page.request.get('/healthz');
  const upstream = answer.headers()['x-chartkey-upstream'];
  const port = Number(upstream.split(':').pop());
  return port === replicas.a.port ? 'a' : port === replicas.b.port ? 'b' : upstream;
}

async function newAccountOn(browser: Browser, replica: 'a' | 'b', name: string, role: string): Promise<Page> {
  const page = await (await pinnedContext(browser, replica)).newPage();
  await addAuthenticator(page);
  await startSignUp(page, name, role);
  await confirmRecoveryPhrase(page);
  await ledgerAddress(page);
  expect(await servedBy(page)).toBe(replica);
  return page;
}

test('a patient signs up on A and signs in on B; a clinician opening a record on A reaches the patient on B within 2 s', async ({ browser }) => {
  test.setTimeout(300_000);

  // Signed up through A, signed in again through B.
  const patient = await newAccountOn(browser, 'a', 'Replica Patient', 'Patient');
  const address = await ledgerAddress(patient);
  await signOut(patient);
  await pin(patient.context(), 'b');
  await signIn(patient);
  expect(await ledgerAddress(patient)).toBe(address);
  expect(await servedBy(patient)).toBe('b');

  // A verified clinician, through A. The operator names the authority
  // against the shared database; A, which holds the administrator key,
  // applies it.
  const authority = await newAccountOn(browser, 'a', 'Replica Board', 'Credentialing authority');
  await nav(authority, 'Credentials').click();
  const command = (await authority.getByTestId('not-named').locator('code').textContent())!;
  const out = execFileSync(process.env.CHARTKEY_BIN!, [
    ...command.split(' ').slice(1), '--data-dir', replicas.a.dataDir, '--database', database,
  ]).toString();
  expect(out).toContain('is named a credentialing authority');
  await reloadAndUnlock(authority);
  await expect(authority.getByTestId('not-named')).toHaveCount(0);
  const clinician = await newAccountOn(browser, 'a', 'Dr Replica Osei', 'Clinician');
  await requestVerification(clinician, 'Replica Board', { license: 'MD-2R', specialty: 'Cardiology' });
  await issueCredential(authority, 'Dr Replica Osei');

  // The patient, on B, imports a chart and shares everything for a day.
  await nav(patient, 'Records').click();
  await importRecords(patient, [FLOYD]);
  await shareEverything(patient, 'Replica', 'Dr Replica Osei', '1');
  expect(await servedBy(patient)).toBe('b');

  // The clinician, on A, opens a record; the patient's page on B is told.
  await reloadAndUnlock(clinician);
  await nav(clinician, 'Shared with me').click();
  await clinician.getByRole('button', { name: "Open Replica Patient's chart" }).click();
  const record = clinician.getByTestId('shared-record').first();
  await expect(record).toBeVisible();
  const clicked = Date.now();
  await record.getByRole('button', { name: 'Open' }).click();
  await expect(patient.getByTestId('toast')).toContainText('Dr Replica Osei opened one of your records', { timeout: 2_000 });
  const crossed = Date.now() - clicked;
  console.log(`replicas.browser_notice_ms ${crossed}`);
  expect(crossed).toBeLessThan(2_000);
  await expect(clinician.getByTestId('opened-record')).toHaveCount(1);
  expect(await servedBy(clinician)).toBe('a');
});
