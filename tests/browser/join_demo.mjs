// Joins a Parley demo room from headless Chromium (Debian's, driven by
// playwright-core) with fake camera and microphone fed from files, stays
// for a while, leaves, and prints what the page saw as one JSON line:
// { state: window.parley, stats: await window.parleyStats() }.
//
// node join_demo.mjs URL ROOM PASSPHRASE SECONDS VIDEO.y4m AUDIO.wav

import { chromium } from 'playwright-core';

const [url, room, passphrase, seconds, video, audio] = process.argv.slice(2);
if (!audio) {
  console.error('usage: node join_demo.mjs URL ROOM PASSPHRASE SECONDS VIDEO.y4m AUDIO.wav');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-video-capture=${video}`,
    `--use-file-for-fake-audio-capture=${audio}`,
    // ICE on loopback only, with real addresses rather than mDNS names.
    '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  const fragment = new URLSearchParams({ room, passphrase, name: 'browser', autojoin: '1', raw: '1' });
  await page.goto(`${url}/demo#${fragment}`);
  await page.waitForFunction(() => ['joined', 'failed'].includes(window.parley?.state), null,
    { timeout: 30_000 });
  console.error(`joined: ${await page.evaluate(() => window.parley.state)}`);
  await page.waitForTimeout(Number(seconds) * 1000);
  const result = await page.evaluate(async () => ({
    state: window.parley,
    stats: await window.parleyStats(),
  }));
  await page.click('#leave');
  await page.waitForTimeout(300);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
