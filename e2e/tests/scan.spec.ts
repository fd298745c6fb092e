// The canary: the plaintext scan finds every needle in every form it
// claims to look for, planted in files of a data directory of its own, and
// finds nothing in text that merely resembles them. Without this, a scan
// that had stopped working would pass every test.
import { test, expect } from '@playwright/test';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { NEEDLES, formsOf, plaintextFound } from '../scan';

test('the plaintext scan finds each needle in each form, and nothing else', () => {
  expect(NEEDLES.every((n) => n.length >= 8)).toBe(true);
  const dir = mkdtempSync(join(tmpdir(), 'chartkey-canary-'));
  try {
    mkdirSync(join(dir, 'blobs', 'ab'), { recursive: true });
    let planted = 0;
    for (const needle of NEEDLES) {
      const bytes = Buffer.from(needle, 'utf8');
      const plants: [string, Buffer][] = [
        ['raw', Buffer.concat([Buffer.from('xx\u0000'), bytes, Buffer.from('\u0000yy')])],
        ['lower', Buffer.from(`{"name":"${needle.toLowerCase()}"}`)],
        ['upper', Buffer.from(needle.toUpperCase())],
        ['hex', Buffer.from(`0x${bytes.toString('hex')}`)],
        ['HEX', Buffer.from(bytes.toString('hex').toUpperCase())],
        ['json', Buffer.from(JSON.stringify({ text: needle }))],
        ['json-u', Buffer.from(JSON.stringify(needle).replace(/ /g, '\\u0020'))],
      ];
      if (needle.length >= 12) {
        for (let shift = 0; shift < 3; shift++) {
          const encoded = Buffer.concat([Buffer.from('zzz').subarray(0, shift), bytes, Buffer.from('!')]).toString('base64');
          plants.push([`b64-${shift}`, Buffer.from(`data:${encoded}`)]);
          plants.push([`b64url-${shift}`, Buffer.from(encoded.replace(/\+/g, '-').replace(/\//g, '_'))]);
        }
      }
      for (const [form, content] of plants) {
        const name = join(dir, 'blobs', 'ab', `${NEEDLES.indexOf(needle)}-${form}`);
        writeFileSync(name, content);
        const { found } = plaintextFound(dir);
        expect(found.some((f) => f.startsWith(`${needle} (`) && f.endsWith(name)), `${needle} as ${form}`).toBe(true);
        rmSync(name);
        planted += 1;
      }
    }
    expect(planted).toBeGreaterThan(NEEDLES.length * 7);
    // Look-alikes: parts of needles, other words, random bytes, and the
    // forms of a needle cut short, match nothing.
    writeFileSync(join(dir, 'blobs', 'ab', 'decoys'), Buffer.concat([
      Buffer.from('Connell Fletch Chicopé 587 Bins 555-500-190 Hemoglobin Peanut'),
      Buffer.from(Buffer.from('Seasonal allergic').toString('base64')),
      Buffer.from(Buffer.from('Osteoarthritis').toString('hex')),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)),
    ]));
    expect(plaintextFound(dir).found).toEqual([]);
    expect(formsOf('Hemoglobin A1c').length).toBe(10);
    expect(formsOf('Connelly').length).toBe(4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
