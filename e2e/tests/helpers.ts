import { expect, Browser, Page, CDPSession } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** The sample FHIR bundles (fixtures/fhir/). */
export const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'fhir');
/** The smallest sample: 145 resources. */
export const FLOYD = join(FIXTURES, 'Floyd_Connelly_66843218-a9f9-4f16-8347-bdc2a0d14265.json');

export interface Authenticator {
  cdp: CDPSession;
  id: string;
}

/** A CDP virtual authenticator: a platform passkey with user verification,
 *  resident keys, and (unless told otherwise) the PRF extension. */
export async function addAuthenticator(page: Page, { hasPrf = true } = {}): Promise<Authenticator> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      hasPrf,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}

export async function credentialCount(auth: Authenticator): Promise<number> {
  const { credentials } = await auth.cdp.send('WebAuthn.getCredentials', { authenticatorId: auth.id });
  return credentials.length;
}

/** Fills the sign-up form and creates the passkey. */
export async function startSignUp(page: Page, name: string, role = 'Patient') {
  await page.goto('/signup');
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('radio', { name: new RegExp(role) }).check();
  await page.getByRole('button', { name: 'Create passkey and account' }).click();
}

/** On the recovery page: reads the 24 words, confirms three of them. */
export async function confirmRecoveryPhrase(page: Page): Promise<string[]> {
  await expect(page.getByRole('heading', { name: 'Your recovery phrase' })).toBeVisible();
  const words = await page.locator('.phrase .word').allTextContents();
  expect(words).toHaveLength(24);
  await page.getByLabel('I have written down all 24 words, in order.').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  const labels = await page.locator('form label.field > span').allTextContents();
  expect(labels).toHaveLength(3);
  for (const label of labels) {
    const position = Number(label.replace('Word ', ''));
    await page.getByLabel(label, { exact: true }).fill(words[position - 1]);
  }
  await page.getByRole('button', { name: 'Confirm' }).click();
  return words;
}

/** The full ledger address shown on the account page. */
export async function ledgerAddress(page: Page): Promise<string> {
  await expect(page.getByRole('heading', { name: 'Your account' })).toBeVisible();
  const address = await page.getByTestId('ledger-address').getAttribute('title');
  expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
  return address!;
}

export async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Your health records, with your keys.' })).toBeVisible();
}

export async function signIn(page: Page) {
  await page.goto('/signin');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
}

/** Nothing secret, nothing at all, is kept in browser storage. */
export async function expectNoBrowserStorage(page: Page) {
  const stored = await page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    idb: (await indexedDB.databases()).length,
  }));
  expect(stored).toEqual({ local: 0, session: 0, idb: 0 });
}

/** A new browser context with a new signed-up, unlocked account (on the
 *  tests' shared server unless `baseURL` names another). */
export async function newAccount(
  browser: Browser, name: string, role = 'Patient', baseURL = process.env.CHARTKEY_URL,
): Promise<Page> {
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  await addAuthenticator(page);
  await startSignUp(page, name, role);
  await confirmRecoveryPhrase(page);
  await ledgerAddress(page);
  return page;
}

/** A link of the signed-in menu. */
export function nav(page: Page, name: string) {
  return page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name, exact: true });
}

/** Reloads (which locks the keys) and unlocks with the passkey. */
export async function reloadAndUnlock(page: Page) {
  await page.reload();
  await page.getByRole('button', { name: 'Unlock with passkey' }).click();
}

/** The operator's `chartkey authority add`, for the authority signed in on
 *  `authority` (its Credentials page shows the command). */
export async function nameAuthority(authority: Page) {
  await nav(authority, 'Credentials').click();
  const command = (await authority.getByTestId('not-named').locator('code').textContent())!;
  expect(command).toMatch(/^chartkey authority add 0x[0-9a-f]{40}$/);
  const out = execFileSync(process.env.CHARTKEY_BIN!, [
    ...command.split(' ').slice(1),
    '--data-dir',
    process.env.CHARTKEY_DATA_DIR!,
  ]).toString();
  expect(out).toContain('is named a credentialing authority');
  await reloadAndUnlock(authority);
  await expect(authority.getByRole('heading', { name: 'Credentials' })).toBeVisible();
  await expect(authority.getByTestId('not-named')).toHaveCount(0);
}

/** The clinician asks `authorityName` to verify them. */
export async function requestVerification(
  clinician: Page,
  authorityName: string,
  { license = 'LIC-1', specialty = 'Psychiatry', jurisdiction = 'Massachusetts, US', organisation = 'Harbourside Clinic' } = {},
) {
  await nav(clinician, 'Verification').click();
  await clinician.getByLabel('Credentialing authority').selectOption({ label: authorityName });
  await clinician.getByLabel('Licence number').fill(license);
  await clinician.getByLabel('Specialty').fill(specialty);
  await clinician.getByLabel('Jurisdiction').fill(jurisdiction);
  await clinician.getByLabel('Organisation').fill(organisation);
  await clinician.getByRole('button', { name: 'Send request' }).click();
  await expect(clinician.getByTestId('verification-request')).toContainText(`Waiting for ${authorityName}`);
}

/** The authority issues the credential `clinicianName` asked for. */
export async function issueCredential(authority: Page, clinicianName: string, validUntil?: string) {
  await reloadAndUnlock(authority);
  const request = authority.getByTestId('pending-request').filter({ hasText: clinicianName });
  if (validUntil) await request.getByLabel('Valid until').fill(validUntil);
  await request.getByRole('button', { name: 'Issue credential' }).click();
  const decided = authority.getByTestId('decided-request').filter({ hasText: clinicianName });
  await expect(decided.locator('[data-credential]')).toHaveAttribute('data-credential', 'verified');
  return decided;
}

/** Starts recording main-thread long tasks (PerformanceObserver `longtask`)
 *  in the current document; `longestTaskMs` reads the longest since. */
export async function watchLongTasks(page: Page) {
  await page.evaluate(() => {
    const w = window as unknown as { __longTasks: number[] };
    w.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.__longTasks.push(entry.duration);
    }).observe({ type: 'longtask' });
  });
}

export async function longestTaskMs(page: Page): Promise<number> {
  return page.evaluate(() => Math.max(0, ...(window as unknown as { __longTasks: number[] }).__longTasks));
}

/** What an independent decoder (Debian's zbarimg) reads from the QR code on the page. */
export async function qrText(page: Page, where: string): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'chartkey-qr-')), 'qr.png');
  await page.getByTestId(where).getByTestId('link-qr').screenshot({ path: file });
  // zbarimg complains on stderr that there is no D-Bus here; only its answer matters.
  return execFileSync('zbarimg', ['--quiet', '--raw', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

/** Imports `files` on the Records page and waits until every record is anchored. */
export async function importRecords(page: Page, files: Parameters<Page['setInputFiles']>[1]) {
  await page.getByTestId('file-input').setInputFiles(files);
  await page.getByTestId('import-button').click();
  await expect(page.getByTestId('import-done')).toContainText('anchored in block', { timeout: 60_000 });
}

/** A new patient (this page's context) with the smallest sample's records
 *  imported and anchored, on the Records page. */
export async function patientWithRecords(page: Page, name: string) {
  await addAuthenticator(page);
  await startSignUp(page, name);
  await confirmRecoveryPhrase(page);
  await nav(page, 'Records').click();
  await importRecords(page, [FLOYD]);
}

/** Makes a link on the Records page (`setup` fills the form); its text. */
export async function makeLink(page: Page, setup: () => Promise<void>): Promise<string> {
  const text = page.getByTestId('link-text');
  const before = (await text.count()) > 0 ? await text.inputValue() : '';
  await setup();
  await page.getByTestId('link-make').click();
  await expect.poll(async () => ((await text.count()) > 0 ? text.inputValue() : ''), { timeout: 30_000 }).not.toBe(before);
  await expect(page.getByTestId('link-qr').locator('svg')).toBeVisible();
  return (await text.inputValue()).trim();
}

/** On the Sharing page: finds `clinician` by `search` and chooses them, for
 *  everything, for `days` days (the caller may tick more before review). */
export async function chooseEverything(patient: Page, search: string, clinician: string, days: string) {
  await nav(patient, 'Sharing').click();
  await patient.getByLabel('Find a clinician by name, specialty or organisation').fill(search);
  await patient.getByRole('button', { name: 'Search', exact: true }).click();
  await patient.getByRole('button', { name: `Choose ${clinician}` }).click();
  await patient.getByLabel('Everything').check();
  await patient.getByLabel('For how long').selectOption(days);
}

/** Shares everything with `clinician` for `days` days, approved with the passkey. */
export async function shareEverything(patient: Page, search: string, clinician: string, days: string) {
  await chooseEverything(patient, search, clinician, days);
  await patient.getByRole('button', { name: 'Review' }).click();
  await patient.getByRole('button', { name: 'Approve with passkey and share' }).click();
  await expect(patient.getByText(`Shared with ${clinician}.`)).toBeVisible();
}
