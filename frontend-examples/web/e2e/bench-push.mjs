// Click-to-pushed-confirmation time: 20 bookings in the real app, each timed in the page from the
// Book click to the bookingConfirmed event arriving over the WebSocket (data-latency-ms), and
// from the test's side (click → confirmation visible). Prints p50/p90. `npm run bench:push`.
import fs from 'node:fs';
import { artifactsDir, buildApp, freePort, futureDate, launchBrowser, recordTraffic, serveApp, startDraftr, stopAll, uniqueEmail, waitFor } from './harness.mjs';

const N = Number(process.env.BENCH_N || 20);
const STEP = 15_000;
const ART = artifactsDir();

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const overall = setTimeout(() => {
  console.error('bench:push: gave up after 180 s');
  stopAll().finally(() => process.exit(1));
}, 180_000);

let browser;
try {
  const dist = fs.existsSync('dist/index.html') && process.env.BENCH_REBUILD !== '1' ? 'dist' : buildApp(ART).dist;
  const port = await freePort();
  const draftr = await startDraftr({ allowedOrigins: `^http://127\\.0\\.0\\.1:${port}$`, logDir: ART });
  const site = await serveApp({ dist, config: { graphqlUrl: draftr.graphqlUrl, wsUrl: draftr.wsUrl }, port, logDir: ART });
  browser = await launchBrowser();
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP);
  const traffic = recordTraffic(page, draftr.graphqlUrl);

  await page.goto(`${site.url}signup`);
  await page.fill('#f-displayName', 'Bench');
  await page.fill('#f-email', uniqueEmail('bench'));
  await page.fill('#f-password', 'correct horse battery staple');
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=me-name]:not(:text("…"))');
  await page.fill('#f-city', 'Lisbon');
  await page.click('form[aria-label=Search] button[type=submit]');
  await page.waitForSelector('[data-testid=search-total]:text("1 stay")');
  await page.click('[data-testid=result] a');
  await page.waitForSelector('[data-testid=listing-title]');
  await waitFor('the bookingConfirmed subscription', () =>
    traffic.frames.some((f) => f.dir === 'out' && f.msg?.type === 'subscribe' && f.msg.payload?.query?.includes('bookingConfirmed')),
  );

  const inPage = [];
  const outside = [];
  for (let i = 0; i < N; i++) {
    const checkIn = futureDate(100 + 2 * i);
    const checkOut = futureDate(101 + 2 * i);
    await page.fill('#f-checkIn', checkIn);
    await page.fill('#f-checkOut', checkOut);
    await page.waitForSelector('[data-testid=quote-available]:text("free")');
    const t0 = Date.now();
    await page.click('[data-testid=book]');
    const card = await page.waitForSelector('[data-testid=push-confirmation]');
    outside.push(Date.now() - t0);
    inPage.push(Number(await card.getAttribute('data-latency-ms')));
  }
  const pushes = traffic.frames.filter((f) => f.dir === 'in' && f.msg?.type === 'next' && f.msg.payload?.data?.bookingConfirmed).length;
  console.log(`bench:push: ${N} bookings, ${pushes} bookingConfirmed frames received`);
  console.log(`  click → pushed confirmation (in page):   p50 ${pct(inPage, 50)} ms, p90 ${pct(inPage, 90)} ms, min ${Math.min(...inPage)} ms, max ${Math.max(...inPage)} ms`);
  console.log(`  click → confirmation visible (playwright): p50 ${pct(outside, 50)} ms, p90 ${pct(outside, 90)} ms`);
  if (pushes < N) throw new Error(`only ${pushes} of ${N} confirmations were pushed`);
} catch (err) {
  console.error(`bench:push failed: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  await stopAll();
  clearTimeout(overall);
}
