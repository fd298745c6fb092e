// The Ledger page: reachable from the account menu, shows the chain's
// latest blocks, and verifies the whole chain on request.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { addAuthenticator, confirmRecoveryPhrase, startSignUp } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

test('the ledger page shows the latest blocks and verifies the chain', async ({ page }) => {
  await addAuthenticator(page);
  await startSignUp(page, 'Grace Hopper');
  await confirmRecoveryPhrase(page);
  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Ledger' }).click();
  await expect(page).toHaveURL(/\/ledger$/);
  await expect(page.getByRole('heading', { name: 'Ledger', exact: true })).toBeVisible();
  await expect(page.getByTestId('ledger-blocks').locator('tbody tr').first()).toBeVisible();
  await expect(page.getByText('Kept by this server (embedded)')).toBeVisible();
  // What the page claims is what holds for an embedded chain: no "no one can change it".
  await expect(page.getByTestId('ledger-trust')).toContainText('could rebuild a different history');
  await expect(page.getByText('not even Chartkey')).toHaveCount(0);
  // Sign-up registered the account in the Directory contract.
  await expect(page.getByTestId('ledger-activity')).toContainText('Account registered');
  await page.getByRole('button', { name: 'Show transaction' }).first().click();
  await expect(page.getByTestId('ledger-transaction')).toContainText('succeeded');
  await expect(page.getByRole('heading', { name: 'Account registered' })).toBeVisible();
  await page.getByTestId('ledger-verify').click();
  await expect(page.getByTestId('ledger-verified')).toContainText('The chain is intact');
  // A checkpoint: the head, signed by the ledger's administrator, which the
  // operator's `chartkey ledger verify --checkpoint` holds the chain to.
  const download = page.waitForEvent('download');
  await page.getByTestId('ledger-checkpoint').click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^chartkey-checkpoint-\d+\.json$/);
  const path = await file.path();
  const checkpoint = JSON.parse(readFileSync(path, 'utf8'));
  expect(checkpoint.message).toContain('Chartkey ledger checkpoint');
  expect(checkpoint.signature).toMatch(/^0x[0-9a-f]{130}$/);
  const verified = execFileSync(process.env.CHARTKEY_BIN!, [
    'ledger', 'verify', '--data-dir', process.env.CHARTKEY_DATA_DIR!, '--checkpoint', path,
  ]).toString();
  expect(verified).toContain('checkpoint holds');
  // Looking again, the page follows the chain from the head it saw: the
  // history it saw is still there, so no warning.
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(page.getByTestId('ledger-blocks').locator('tbody tr').first()).toBeVisible();
  await expect(page.getByTestId('ledger-rewritten')).toHaveCount(0);
  // A transaction hash that is not there gets a clear answer.
  await page.getByLabel('Transaction hash').fill('0x' + 'ab'.repeat(32));
  await page.getByRole('button', { name: 'Show', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('No transaction with that hash');
  // A server that shows another history than the one this page saw: the
  // heads it answers with no longer lead from the block seen before.
  await page.route('**/api/chain/heads*', async (route) => {
    const answer = await route.fetch();
    const heads = await answer.json();
    heads.heads = heads.heads.map((h: { hash: string; parent_hash: string }) => ({
      ...h,
      hash: '0x' + 'ee'.repeat(32),
    }));
    await route.fulfill({ response: answer, json: heads });
  });
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(page.getByTestId('ledger-rewritten')).toContainText('is not the one this page saw earlier');
  await page.unroute('**/api/chain/heads*');
});

test('when the ledger cannot be read the page says why, and a retry shows it', async ({ page }) => {
  await addAuthenticator(page);
  await startSignUp(page, 'Ledger Retry');
  await confirmRecoveryPhrase(page);
  // The server's own refusal, as a server function sends it.
  await page.route('**/api/ledger/overview', (route) =>
    route.fulfill({ status: 429, contentType: 'application/json', body: JSON.stringify('RateLimited') }),
  );
  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Ledger' }).click();
  await expect(page.getByRole('alert')).toHaveText('Too many attempts from your network. Wait a minute, then try again.');
  await expect(page.getByTestId('ledger-blocks')).toHaveCount(0);
  await page.unroute('**/api/ledger/overview');
  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Account' }).click();
  await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Ledger' }).click();
  await expect(page.getByTestId('ledger-blocks').locator('tbody tr').first()).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
});
