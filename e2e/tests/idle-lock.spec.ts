// Clinicians on shared workstations: keys lock after inactivity.
import { test, expect } from '@playwright/test';
import { startServer } from '../server';
import { addAuthenticator, confirmRecoveryPhrase, ledgerAddress, startSignUp } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

test('a clinician\'s keys lock after the configured idle time', async ({ browser }) => {
  const server = await startServer(['--clinician-idle-lock-secs', '3']);
  try {
    const context = await browser.newContext({ baseURL: server.url });
    const page = await context.newPage();
    await addAuthenticator(page);
    await startSignUp(page, 'Dr Idle', 'Clinician');
    await confirmRecoveryPhrase(page);
    await ledgerAddress(page);
    await expect(page.getByText('lock automatically after')).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Unlock your keys' })).toBeVisible({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Unlock with passkey' }).click();
    await ledgerAddress(page);
    await context.close();
  } finally {
    await server.stop();
  }
});
