// The Ledger page: reachable from the account menu, shows the chain's
// latest blocks, and verifies the whole chain on request.
import { test, expect } from '@playwright/test';
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
  // A transaction hash that is not there gets a clear answer.
  await page.getByLabel('Transaction hash').fill('0x' + 'ab'.repeat(32));
  await page.getByRole('button', { name: 'Show', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('No transaction with that hash');
});
