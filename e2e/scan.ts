// The plaintext scan: nothing the server keeps (its data directory: the
// database, the blob store, the ledger) or logs holds the text of the
// records the tests put in. Run by the records tests, and again after every
// test (global teardown), so sharing, write-back and the rest are covered.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Distinctive text of the sample bundles and of the tests' write-backs. */
export const NEEDLES = ['Connelly', 'Reuben', 'Lind', 'Fletcher', 'Hyatt', 'LEOMINSTER', 'HOSPITAL ROAD',
  'Osteoarthritis of hip', 'Body Height', 'Hemoglobin A1c', 'Peanut allergy', 'Seasonal allergic rhinitis',
  'sleeping better on the new dose'];

/** Every file under `dataDir` (and `logFile`) holding a needle: "needle in file". */
export function plaintextFound(dataDir: string, logFile?: string): { files: string[]; found: string[] } {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(dataDir);
  if (logFile) files.push(logFile);
  const found: string[] = [];
  for (const file of files) {
    const text = readFileSync(file).toString('latin1');
    for (const needle of NEEDLES) if (text.includes(needle)) found.push(`${needle} in ${file}`);
  }
  return { files, found };
}
