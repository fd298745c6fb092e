// The viewer's camera: Chromium's fake camera plays a picture of a link's
// QR code (taken from the patient's page), and the viewer reads it with
// its own decoder (rqrr; Chromium on Linux has no BarcodeDetector) and
// opens the link.
import { test, expect, chromium, Page } from '@playwright/test';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { makeLink, patientWithRecords } from './helpers';
import { scanAfterThisFile } from '../scan';

scanAfterThisFile();

const W = 1280;
const H = 720;

/** The QR code on `page`, as brightness values (0–255) of its pixels. */
async function qrPixels(page: Page): Promise<{ width: number; height: number; luma: number[] }> {
  const png = await page.getByTestId('link-made').getByTestId('link-qr').screenshot();
  const reader = await page.context().newPage();
  const pixels = await reader.evaluate(async (src) => {
    const image = new Image();
    image.src = src;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d')!;
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, image.width, image.height);
    const luma = [];
    for (let i = 0; i < data.length; i += 4) luma.push(Math.round(0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]));
    return { width: image.width, height: image.height, luma };
  }, `data:image/png;base64,${png.toString('base64')}`);
  await reader.close();
  return pixels;
}

/** One grey 1280×720 frame with the picture in its middle, as a Y4M file (I420). */
function y4m(picture: { width: number; height: number; luma: number[] }): string {
  const y = Buffer.alloc(W * H, 180);
  const scale = Math.max(1, Math.floor(Math.min((W - 40) / picture.width, (H - 40) / picture.height)));
  const left = Math.floor((W - picture.width * scale) / 2);
  const top = Math.floor((H - picture.height * scale) / 2);
  for (let py = 0; py < picture.height * scale; py++) {
    for (let px = 0; px < picture.width * scale; px++) {
      y[(top + py) * W + left + px] = picture.luma[Math.floor(py / scale) * picture.width + Math.floor(px / scale)];
    }
  }
  const chroma = Buffer.alloc((W / 2) * (H / 2), 128);
  const file = join(mkdtempSync(join(tmpdir(), 'chartkey-camera-')), 'qr.y4m');
  writeFileSync(file, Buffer.concat([Buffer.from(`YUV4MPEG2 W${W} H${H} F5:1 Ip A1:1 C420jpeg\nFRAME\n`), y, chroma, chroma]));
  return file;
}

test('the viewer reads a link from the camera and opens it', async ({ page }) => {
  await patientWithRecords(page, 'Camera Patient');
  await makeLink(page, async () => { await page.getByTestId('link-label').fill('Scanned at the desk'); });
  const camera = y4m(await qrPixels(page));

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${camera}`],
  });
  try {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`${new URL(page.url()).origin}/view`);
    await phone.getByRole('button', { name: 'Scan a QR code' }).click();
    await expect(phone.getByRole('heading', { name: 'Scanned at the desk' })).toBeVisible({ timeout: 30_000 });
    await expect(phone.locator('#scanner')).toBeHidden();
    await phone.getByLabel('Your name and where you are').fill('Front desk');
    await phone.getByRole('button', { name: 'Open the records' }).click();
    await expect(phone.getByTestId('viewer-records').getByRole('heading', { name: 'Problems', exact: true })).toBeVisible({ timeout: 30_000 });
  } finally {
    await browser.close();
  }
});
