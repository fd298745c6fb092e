// The plaintext scan: nothing the server keeps (its data directory: the
// database, the blob store, the ledger) or logs holds the text of the
// records the tests put in, in any of the forms a careless encoder would
// leave it in: as is, lowercased, hex, JSON-escaped, or base64 (all three
// alignments, standard and URL-safe). Run after every test file
// (`scanAfterThisFile`), once more after all of them (global teardown),
// and proven able to find each form by tests/scan.spec.ts.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test, expect } from '@playwright/test';

/**
 * Distinctive text of the sample bundles and of the tests' write-backs:
 * names, addresses, a phone number, condition and observation texts. Each
 * is at least 8 characters, so that no form of it matches by chance.
 */
export const NEEDLES = ['Connelly', 'Fletcher', 'Chicopee', '587 Bins Ferry', '258 Williamson Glen', '555-500-1901',
  'LEOMINSTER', 'HOSPITAL ROAD', 'Osteoarthritis of hip', 'Body Height', 'Hemoglobin A1c', 'Peanut allergy',
  'Seasonal allergic rhinitis', 'sleeping better on the new dose'];

/** Base64 forms only for needles this long: shorter ones could match by chance. */
const BASE64_MIN = 12;

export interface Form {
  needle: string;
  form: string;
  text: string;
  /** Matched against the file lowercased (true) or as it is. */
  caseless: boolean;
}

/** Every form a needle is looked for in. */
export function formsOf(needle: string): Form[] {
  const bytes = Buffer.from(needle, 'utf8');
  const forms: Form[] = [
    { needle, form: 'as is, any case', text: needle.toLowerCase(), caseless: true },
    { needle, form: 'hex', text: bytes.toString('hex'), caseless: true },
    { needle, form: 'JSON-escaped', text: JSON.stringify(needle).slice(1, -1).toLowerCase(), caseless: true },
    {
      needle,
      form: 'JSON \\u-escaped',
      text: [...needle].map((c) => (/[A-Za-z0-9]/.test(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('').toLowerCase(),
      caseless: true,
    },
  ];
  if (needle.length >= BASE64_MIN) {
    for (let shift = 0; shift < 3; shift++) {
      // The needle after `shift` other bytes: keep only the characters that
      // depend on the needle's bytes alone.
      const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
      const start = Math.ceil((shift * 8) / 6);
      const end = Math.floor(((shift + bytes.length) * 8) / 6);
      const core = encoded.slice(start, end);
      forms.push({ needle, form: `base64 (offset ${shift})`, text: core, caseless: false });
      forms.push({ needle, form: `base64url (offset ${shift})`, text: core.replace(/\+/g, '-').replace(/\//g, '_'), caseless: false });
    }
  }
  return forms;
}

const FORMS: Form[] = NEEDLES.flatMap(formsOf);

/** Every form of every needle found in `bytes`: "needle (form) in name". */
export function findIn(bytes: Buffer, name: string, forms: Form[] = FORMS): string[] {
  const text = bytes.toString('latin1');
  const lower = text.toLowerCase();
  return forms.filter((f) => (f.caseless ? lower : text).includes(f.text)).map((f) => `${f.needle} (${f.form}) in ${name}`);
}

/** Files under `dataDir` (and `logFile`), each with its modification time. */
function filesUnder(dataDir: string, logFile?: string): { path: string; mtime: number }[] {
  const files: { path: string; mtime: number }[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const stat = statSync(p);
      if (stat.isDirectory()) walk(p);
      else files.push({ path: p, mtime: stat.mtimeMs });
    }
  };
  walk(dataDir);
  if (logFile) files.push({ path: logFile, mtime: statSync(logFile).mtimeMs });
  return files;
}

/** Every file under `dataDir` (and `logFile`) holding a form of a needle. */
export function plaintextFound(dataDir: string, logFile?: string): { files: string[]; found: string[] } {
  const files = filesUnder(dataDir, logFile);
  const found = files.flatMap((f) => findIn(readFileSync(f.path), f.path));
  return { files: files.map((f) => f.path), found };
}

/** What this worker has scanned already, and as of when. */
const scanned = new Map<string, number>();

/**
 * Registers, in the calling spec file, a scan of the shared server's data
 * directory and log after the file's tests: every file new or changed since
 * this worker last looked.
 */
export function scanAfterThisFile() {
  test.afterAll(async () => {
    const dataDir = process.env.CHARTKEY_DATA_DIR;
    if (!dataDir) throw new Error('CHARTKEY_DATA_DIR is not set (global-setup.ts sets it)');
    const found: string[] = [];
    for (const f of filesUnder(dataDir, process.env.CHARTKEY_LOG_FILE)) {
      if (scanned.get(f.path) === f.mtime) continue;
      found.push(...findIn(readFileSync(f.path), f.path));
      scanned.set(f.path, f.mtime);
    }
    expect(found, 'plaintext on the server after this file').toEqual([]);
  });
}
