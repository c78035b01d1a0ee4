// Browser tests: the built app in Debian's Chromium (playwright-core) against a real `draftr run`.
// Run with `npm run e2e` (node's test runner). Each flow fails without the feature it names.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  artifactsDir,
  buildApp,
  bundleSizes,
  freePort,
  futureDate,
  gql,
  launchBrowser,
  recordTraffic,
  serveApp,
  sleep,
  startDraftr,
  stopAll,
  uniqueEmail,
  waitFor,
} from './harness.mjs';

const STEP = 15_000; // the longest any single wait may take
const PASSWORD = 'correct horse battery staple';
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const ART = artifactsDir();
let draftr;
let site;
let browser;
let dist;

async function shot(page, flow, step) {
  const dir = path.join(ART, flow);
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${step}.png`), fullPage: true, timeout: STEP }).catch(() => {});
}

async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  page.setDefaultNavigationTimeout(STEP);
  page.on('pageerror', (err) => console.log(`  [page error] ${err.message}`));
  return page;
}

async function register(page, baseUrl, name) {
  const email = uniqueEmail(name.toLowerCase());
  await page.goto(`${baseUrl}signup`);
  await page.fill('#f-displayName', name);
  await page.fill('#f-email', email);
  await page.fill('#f-password', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=me-name]:not(:text("…"))');
  return email;
}

/** The stored session (the app keeps it in localStorage). */
const sessionOf = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('draftr.session') ?? 'null'));

/** A published demo listing in `city`, from the API. */
async function listingIn(url, city) {
  const r = await gql(url, 'query($f: PropertyFilter) { properties(first: 1, filter: $f) { edges { node { id title maxGuests } } } }', {
    f: { city },
  });
  return r.data.properties.edges[0].node;
}

/** Waits until the WebSocket has sent a subscribe for `field` (so a push cannot be missed). */
async function subscribed(traffic, field) {
  await waitFor(`a ${field} subscription on the socket`, () =>
    traffic.frames.some((f) => f.dir === 'out' && f.msg?.type === 'subscribe' && f.msg.payload?.query?.includes(field)),
  );
}

before(async () => {
  const logDir = ART;
  const build = buildApp(logDir);
  dist = build.dist;
  const sizes = bundleSizes(dist);
  const gzLines = build.output.split('\n').filter((l) => /gzip/.test(l) && /index-|AuthProvider-/.test(l));
  console.log(`vite build: ${build.ms} ms`);
  gzLines.forEach((l) => console.log(`  ${l.trim()}`));
  if (sizes) console.log(`first page load (entry + static imports + css + html): ${(sizes.initialGzip / 1024).toFixed(1)} kB gzip`);

  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  draftr = await startDraftr({ allowedOrigins: `^${escape(origin)}$`, logDir });
  site = await serveApp({ dist, config: { graphqlUrl: draftr.graphqlUrl, wsUrl: draftr.wsUrl }, port, logDir });
  browser = await launchBrowser();
  console.log(`draftr ${draftr.graphqlUrl} (log ${draftr.log}); app ${site.url}; artifacts ${ART}`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await site?.stop();
  await draftr?.stop();
  await stopAll();
});

describe('Draftr web app', { concurrency: false }, () => {
  test('1. register, search, quote, book: confirmation pushed over the socket; trips, cancel with refund, notifications', { timeout: 90_000 }, async () => {
    const context = await browser.newContext();
    const page = await newPage(context);
    const traffic = recordTraffic(page, draftr.graphqlUrl);
    const flow = 'flow1-book';
    try {
      await register(page, site.url, 'Ann');
      await shot(page, flow, '01-registered');

      // Amenities, sort, "Show more" (cursor pagination merged in the cache), price range.
      const prices = () => page.$$eval('[data-testid=result] .money', (els) => els.map((e) => Number(e.textContent.replace(/[^0-9.]/g, ''))));
      await page.check('input[name=amenity][value=wifi]');
      await page.selectOption('#f-sort', 'PRICE_DESC');
      await page.click('form[aria-label=Search] button[type=submit]');
      await page.waitForSelector('[data-testid=search-total]:text("5 stays")');
      assert.equal((await prices()).length, 4, 'a first page of 4');
      let mark = traffic.http.length;
      await page.click('button:text("Show more")');
      await waitFor('the second page', async () => (await prices()).length === 5);
      const all = await prices();
      assert.deepEqual(all, [...all].sort((x, y) => y - x), `sorted by price, high to low: ${all}`);
      assert.deepEqual(traffic.http.slice(mark).map((r) => r.op), ['SearchProperties']);
      await page.fill('#f-max', '200');
      await page.click('form[aria-label=Search] button[type=submit]');
      await page.waitForSelector('[data-testid=search-total]:text("2 stays")');
      assert.ok((await prices()).every((x) => x <= 200));
      await page.uncheck('input[name=amenity][value=wifi]');
      await page.fill('#f-max', '');

      // Search by city and dates.
      const checkIn = futureDate(20);
      const checkOut = futureDate(23);
      await page.click('a:text("Search")');
      await page.fill('#f-city', 'Lisbon');
      await page.fill('#f-from', checkIn);
      await page.fill('#f-to', checkOut);
      await page.fill('#f-guests', '2');
      await page.click('form[aria-label=Search] button[type=submit]');
      await page.waitForSelector('[data-testid=search-total]:text("1 stay")');
      await shot(page, flow, '02-search');

      // Open the listing: description, host, calendar; the quote for the dates.
      await page.click('[data-testid=result] a');
      await page.waitForSelector('[data-testid=listing-title]');
      await page.waitForSelector('[data-testid=calendar]');
      assert.match(await page.textContent('[data-testid=listing-host]'), /Hugo Host/);
      assert.equal(await page.inputValue('#f-checkIn'), checkIn);
      await page.waitForSelector('[data-testid=quote-total]');
      assert.match(await page.textContent('[data-testid=quote]'), /3 nights/);
      await shot(page, flow, '03-quote');

      // Book with pm_card_visa once the socket listens; the confirmation must be pushed.
      await subscribed(traffic, 'bookingConfirmed');
      await page.selectOption('#f-paymentMethod', 'pm_card_visa');
      const clickAt = Date.now();
      const httpBefore = traffic.http.length;
      await page.click('[data-testid=book]');
      const card = await page.waitForSelector('[data-testid=push-confirmation]');
      const reservationId = await card.getAttribute('data-reservation-id');
      const latency = Number(await card.getAttribute('data-latency-ms'));
      console.log(`  click → pushed confirmation: ${latency} ms`);
      await shot(page, flow, '04-confirmed-live');

      const pushed = traffic.frames.find(
        (f) => f.dir === 'in' && f.at >= clickAt && f.msg?.type === 'next' && f.msg.payload?.data?.bookingConfirmed?.reservationId === reservationId,
      );
      assert.ok(pushed, 'a graphql-ws "next" frame with bookingConfirmed for this reservation arrived');
      const httpSince = traffic.http.slice(httpBefore).map((r) => r.op);
      assert.deepEqual(httpSince, ['CreateReservation'], `only the booking went over HTTP (no query fetched the confirmation): ${httpSince}`);
      // The calendar shows the new stay from the mutation result, without a refetch.
      assert.equal(await page.getAttribute(`[data-testid=day-${checkIn}]`, 'data-booked'), 'true');

      // My trips: CONFIRMED; cancel; the refund the policy gave.
      await page.click('a:text("My trips")');
      const trip = page.locator(`[data-testid=trip][data-reservation-id="${reservationId}"]`);
      await trip.locator('[data-testid=trip-status]:text("CONFIRMED")').waitFor();
      await shot(page, flow, '05-trips-confirmed');
      mark = traffic.http.length;
      await trip.locator('[data-testid=cancel]').click();
      await trip.locator('[data-testid=confirm-cancel]').click();
      await trip.locator('[data-testid=trip-status]:text("CANCELLED")').waitFor();
      const refund = await trip.locator('[data-testid=trip-refund]').textContent();
      assert.match(refund, /refund €/);
      assert.deepEqual(traffic.http.slice(mark).map((r) => r.op), ['CancelReservation'], 'the row updated from the mutation result');
      await shot(page, flow, '06-cancelled-refund');

      // Notifications: the emails (written asynchronously: refresh until they are there).
      await page.click('a:text("Notifications")');
      await waitFor('the booking and cancellation emails', async () => {
        const kinds = await page.$$eval('[data-testid=notification]', (els) => els.map((e) => e.dataset.kind));
        if (kinds.includes('booking_confirmed') && kinds.includes('booking_cancelled')) return true;
        await page.click('[data-testid=refresh-notifications]');
        return false;
      }, STEP, 500);
      await shot(page, flow, '07-notifications');
    } finally {
      await context.close();
    }
  });

  test('2. two users book the same nights at the same moment: one confirmed, one conflict, one reservation', { timeout: 60_000 }, async () => {
    const flow = 'flow2-race';
    const listing = await listingIn(draftr.graphqlUrl, 'Sylt');
    const checkIn = futureDate(40);
    const checkOut = futureDate(42);
    const contexts = [await browser.newContext(), await browser.newContext()];
    try {
      const pages = [];
      const traffic = [];
      for (const [i, ctx] of contexts.entries()) {
        const page = await newPage(ctx);
        traffic.push(recordTraffic(page, draftr.graphqlUrl));
        await register(page, site.url, i === 0 ? 'Bea' : 'Cem');
        await page.goto(`${site.url}listing/${listing.id}?checkIn=${checkIn}&checkOut=${checkOut}&guests=2`);
        await page.waitForSelector('[data-testid=quote-available]:text("free")');
        pages.push(page);
      }
      await Promise.all(traffic.map((t) => subscribed(t, 'bookingConfirmed')));
      await Promise.all(pages.map((p, i) => shot(p, flow, `01-ready-${i}`)));

      await Promise.all(pages.map((p) => p.click('[data-testid=book]')));
      const outcomes = await Promise.all(
        pages.map((p) =>
          Promise.race([
            p.waitForSelector('[data-testid=push-confirmation]').then(() => 'confirmed'),
            p.waitForSelector('[data-testid=booking-error]').then(async (el) => `error: ${await el.textContent()}`),
          ]),
        ),
      );
      await Promise.all(pages.map((p, i) => shot(p, flow, `02-outcome-${i}`)));
      assert.equal(outcomes.filter((o) => o === 'confirmed').length, 1, `one confirmed: ${outcomes}`);
      const lost = outcomes.find((o) => o !== 'confirmed');
      assert.match(lost, /those dates were just taken/i);

      // Through the API, as each user: exactly one active reservation for those nights.
      let active = 0;
      for (const p of pages) {
        const { accessToken } = await sessionOf(p);
        const r = await gql(
          draftr.graphqlUrl,
          '{ me { reservations(first: 50) { edges { node { status checkIn checkOut property { id } } } } } }',
          {},
          accessToken,
        );
        assert.ok(!r.errors, JSON.stringify(r.errors));
        active += r.data.me.reservations.edges.filter(
          ({ node: n }) => n.property.id === listing.id && n.checkIn < checkOut && checkIn < n.checkOut && ['CONFIRMED', 'PENDING'].includes(n.status),
        ).length;
      }
      assert.equal(active, 1, 'exactly one active reservation for those nights');
    } finally {
      await Promise.all(contexts.map((c) => c.close()));
    }
  });

  test('3. short-lived access tokens: silent refresh (one in flight); a revoked session and a sign-out in another tab land on sign-in', { timeout: 90_000 }, async () => {
    const flow = 'flow3-tokens';
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const TTL = 3;
    let short;
    let shortSite;
    let context;
    try {
      short = await startDraftr({ allowedOrigins: `^${escape(origin)}$`, env: { DRAFTR_AUTH__TOKENS__ACCESS_TTL_SECS: String(TTL) }, logDir: ART });
      shortSite = await serveApp({ dist, config: { graphqlUrl: short.graphqlUrl, wsUrl: short.wsUrl }, port, logDir: ART });
      context = await browser.newContext();
      const a = await newPage(context);
      const traffic = recordTraffic(a, short.graphqlUrl);
      await register(a, shortSite.url, 'Dan');
      const first = await sessionOf(a);
      assert.ok(first.expiresAt - Date.now() <= TTL * 1000, `the token lives ${TTL} s`);

      // (a) Before expiry, from expiresIn: the next request refreshes first, then succeeds.
      await sleep(TTL * 1000 + 500);
      let mark = traffic.http.length;
      await a.click('a:text("My trips")');
      await a.waitForSelector('[data-testid=trips]', { state: 'attached' });
      let ops = traffic.http.slice(mark).map((r) => r.op);
      assert.equal(ops.filter((o) => o === 'RefreshToken').length, 1, `one refresh: ${ops}`);
      assert.ok(ops.indexOf('RefreshToken') < ops.indexOf('MyTrips'), `refreshed before asking: ${ops}`);
      assert.notEqual((await sessionOf(a)).refreshToken, first.refreshToken, 'the refresh token rotated');
      await shot(a, flow, '01-refreshed-before-request');

      // (b) On UNAUTHENTICATED: the client believes its token is good (say its clock is off),
      // the server does not. A page load sends two queries at once; both fail, ONE refresh, both
      // retried and shown. (The server allows 5 s of clock leeway past `exp`.) The page is given
      // back its first access token, long expired, as if still good: left alone it would not
      // hold a stale one, since the server closes the live socket when its token expires (4403)
      // and the app refreshes then.
      const LEEWAY = 5;
      await sleep((TTL + LEEWAY) * 1000 + 1000);
      await a.evaluate((stale) => {
        const s = JSON.parse(localStorage.getItem('draftr.session'));
        s.accessToken = stale;
        s.expiresAt = Date.now() + 3_600_000;
        localStorage.setItem('draftr.session', JSON.stringify(s));
      }, first.accessToken);
      // Their answers are held until both are in, then delivered together.
      const firstAttempts = new Set();
      let releaseBoth;
      const both = new Promise((r) => (releaseBoth = r));
      await a.route(short.graphqlUrl, async (route) => {
        const req = route.request();
        const op = req.method() === 'POST' ? JSON.parse(req.postData() ?? '{}').operationName : null;
        if ((op !== 'Me' && op !== 'MyListings') || firstAttempts.has(op)) return route.continue();
        firstAttempts.add(op);
        const response = await route.fetch();
        if (firstAttempts.size === 2) releaseBoth();
        await Promise.race([both, sleep(5000)]);
        return route.fulfill({ response });
      });
      mark = traffic.http.length;
      await a.goto(`${shortSite.url}host/listings`);
      await a.waitForSelector('[data-testid=listings]', { state: 'attached' });
      await a.waitForSelector('[data-testid=me-name]:text("Dan")');
      ops = traffic.http.slice(mark).map((r) => r.op);
      assert.equal(ops.filter((o) => o === 'RefreshToken').length, 1, `one refresh for the failed requests: ${ops}`);
      assert.equal(ops.filter((o) => o === 'MyListings').length, 2, `MyListings failed, then was retried: ${ops}`);
      assert.equal(ops.filter((o) => o === 'Me').length, 2, `Me failed, then was retried: ${ops}`);
      assert.equal(new URL(a.url()).pathname, '/host/listings');
      await a.unroute(short.graphqlUrl);
      // The live socket was refused the stale token at connection_init; it reconnected with the fresh one.
      await a.waitForSelector('[data-testid=socket][data-state=connected]');
      await shot(a, flow, '02-refreshed-after-unauthenticated');

      // (c) Two tabs share the session (localStorage). Sign out in one: the other tab's next
      // request lands on sign-in.
      const b = await newPage(context);
      await b.goto(shortSite.url);
      await b.waitForSelector('[data-testid=me-name]');
      await b.waitForSelector('[data-testid=search-total]');
      await shot(b, flow, '03-second-tab');
      await a.click('[data-testid=sign-out]');
      await a.waitForURL(/\/signin/);
      await b.fill('#f-city', 'Lisbon');
      await b.click('form[aria-label=Search] button[type=submit]');
      await b.waitForSelector('[data-testid=signin-reason]:text("signed out in another tab")');
      assert.equal(new URL(b.url()).pathname, '/signin');
      await shot(b, flow, '04-second-tab-next-request');

      // (d) A revoked session: the refresh is refused, the user is sent to sign in. (One tab:
      // with two, whichever tab asks first finds out, and the other just follows the store.)
      await b.close();
      const email = uniqueEmail('eve');
      const reg = await gql(short.graphqlUrl, 'mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken expiresIn user { id } } }', {
        i: { email, password: PASSWORD, displayName: 'Eve' },
      });
      const p = reg.data.register;
      // Spend the refresh token outside the app: the one the app holds is now a reused one.
      await gql(short.graphqlUrl, 'mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }', { r: p.refreshToken });
      await a.evaluate((s) => localStorage.setItem('draftr.session', JSON.stringify(s)), {
        accessToken: p.accessToken,
        refreshToken: p.refreshToken,
        expiresAt: Date.now() - 1000,
        lifetimeMs: p.expiresIn * 1000,
        userId: p.user.id,
      });
      await a.goto(`${shortSite.url}trips`);
      await a.waitForSelector('[data-testid=signin-reason]:text("session has ended")');
      assert.equal(await sessionOf(a), null, 'the session was cleared');
      await shot(a, flow, '05-revoked-session');
    } finally {
      await context?.close();
      await shortSite?.stop();
      await short?.stop();
    }
  });

  test('4. a declined card: the error at the payment field, the dates stay bookable', { timeout: 60_000 }, async () => {
    const flow = 'flow4-declined';
    const listing = await listingIn(draftr.graphqlUrl, 'Lucca');
    const checkIn = futureDate(60);
    const checkOut = futureDate(62);
    const context = await browser.newContext();
    try {
      const page = await newPage(context);
      const traffic = recordTraffic(page, draftr.graphqlUrl);
      await register(page, site.url, 'Fay');
      await page.goto(`${site.url}listing/${listing.id}?checkIn=${checkIn}&checkOut=${checkOut}&guests=2`);
      await page.waitForSelector('[data-testid=quote-available]:text("free")');
      await subscribed(traffic, 'bookingConfirmed');

      await page.selectOption('#f-paymentMethod', 'pm_card_chargeDeclined');
      await page.click('[data-testid=book]');
      const err = await page.waitForSelector('[data-field=paymentMethod] [data-testid=error-paymentMethod]');
      assert.match(await err.textContent(), /declined/i);
      assert.equal(await page.getAttribute('#f-paymentMethod', 'aria-invalid'), 'true');
      assert.equal(await page.$('[data-testid=booking-error]'), null, 'no form-level error');
      await shot(page, flow, '01-declined');

      // Still free: the quote says so, and booking with a good card works.
      await page.reload();
      await page.waitForSelector('[data-testid=quote-available]:text("free")');
      assert.equal(await page.getAttribute(`[data-testid=day-${checkIn}]`, 'data-booked'), null);
      await subscribed(traffic, 'bookingConfirmed');
      await page.selectOption('#f-paymentMethod', 'pm_card_visa');
      await page.click('[data-testid=book]');
      const card = await page.waitForSelector('[data-testid=push-confirmation]');
      const reservationId = await card.getAttribute('data-reservation-id');
      await shot(page, flow, '02-booked-with-visa');

      // A status change made elsewhere (here: cancelled through the API) is pushed by
      // reservationStatusChanged and rewrites the trip's status in the cache, no HTTP.
      await page.click('a:text("My trips")');
      const trip = page.locator(`[data-testid=trip][data-reservation-id="${reservationId}"]`);
      await trip.locator('[data-testid=trip-status]:text("CONFIRMED")').waitFor();
      await subscribed(traffic, 'reservationStatusChanged');
      const mark = traffic.http.length;
      const { accessToken } = await sessionOf(page);
      const cancelled = await gql(draftr.graphqlUrl, 'mutation($id: ID!) { cancelReservation(id: $id) { status } }', { id: reservationId }, accessToken);
      assert.equal(cancelled.data?.cancelReservation.status, 'CANCELLED', JSON.stringify(cancelled));
      await trip.locator('[data-testid=trip-status]:text("CANCELLED")').waitFor();
      assert.ok(
        traffic.frames.some((f) => f.dir === 'in' && f.msg?.payload?.data?.reservationStatusChanged?.status === 'CANCELLED'),
        'a reservationStatusChanged frame arrived',
      );
      assert.deepEqual(traffic.http.slice(mark).map((r) => r.op), [], 'no HTTP request from the page');
      await shot(page, flow, '03-status-pushed');
    } finally {
      await context.close();
    }
  });

  test('5. a page from a foreign origin cannot call the router or open the socket', { timeout: 60_000 }, async () => {
    const flow = 'flow5-foreign-origin';
    const port = await freePort('127.0.0.2');
    let foreign;
    let context;
    try {
      foreign = await serveApp({ dist, config: { graphqlUrl: draftr.graphqlUrl, wsUrl: draftr.wsUrl }, host: '127.0.0.2', port, logDir: ART });
      context = await browser.newContext();
      const page = await newPage(context);
      await page.goto(foreign.url);
      await page.waitForSelector('[data-testid=form-error]');
      assert.match(await page.textContent('[data-testid=form-error]'), /can't reach draftr/i);
      await shot(page, flow, '01-app-cannot-reach');

      const result = await page.evaluate(
        async ({ graphqlUrl, wsUrl }) => {
          const out = {};
          try {
            const res = await fetch(graphqlUrl, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ query: '{ categories { id } }' }),
            });
            out.fetch = `status ${res.status}`;
          } catch (err) {
            out.fetch = `refused: ${err.name}`;
          }
          out.socket = await new Promise((resolve) => {
            const ws = new WebSocket(wsUrl, 'graphql-transport-ws');
            const timer = setTimeout(() => resolve('no answer'), 5000);
            ws.onopen = () => {
              clearTimeout(timer);
              ws.close();
              resolve('opened');
            };
            ws.onclose = (e) => {
              clearTimeout(timer);
              resolve(`refused (close ${e.code})`);
            };
          });
          return out;
        },
        { graphqlUrl: draftr.graphqlUrl, wsUrl: draftr.wsUrl },
      );
      console.log(`  from ${foreign.origin}: fetch ${result.fetch}; socket ${result.socket}`);
      assert.match(result.fetch, /^refused/, 'the browser refuses the cross-origin POST (no CORS allowance)');
      assert.match(result.socket, /^refused/, 'the socket is refused for this Origin');

      // The same request from the allowed origin works (so the refusal is about the origin).
      const ok = await browser.newContext();
      const p2 = await newPage(ok);
      await p2.goto(site.url);
      await p2.waitForSelector('[data-testid=search-total]');
      await ok.close();
    } finally {
      await context?.close();
      await foreign?.stop();
    }
  });
  test('6. host: list a property (the role shows HOST), publish and archive it; GraphiQL playground with the token', { timeout: 60_000 }, async () => {
    const flow = 'flow6-host-playground';
    const context = await browser.newContext();
    try {
      const page = await newPage(context);
      const traffic = recordTraffic(page, draftr.graphqlUrl);
      await register(page, site.url, 'Gus');
      assert.equal(await page.textContent('[data-testid=me-role]'), 'GUEST');
      await page.click('a:text("Host")');
      await page.click('a:text("List a property")');
      await page.fill('#f-title', 'Loft by the canal');
      await page.fill('#f-description', 'Bright loft, two minutes from the water.');
      await page.fill('#f-line1', '1 Canal Street');
      await page.fill('#f-city', 'Ghent');
      await page.fill('#f-country', 'BE');
      await page.fill('#f-nightlyRate', '0');
      await page.click('[data-testid=create-property]');
      // A field error from extensions.field, next to its field.
      await page.waitForSelector('[data-testid=error-nightlyRate]');
      await shot(page, flow, '01-field-error');
      await page.fill('#f-nightlyRate', '95');
      await page.selectOption('#f-status', 'DRAFT');
      const mark = traffic.http.length;
      await page.click('[data-testid=create-property]');
      await page.waitForURL(/\/host\/listings/);
      await page.waitForSelector('[data-testid=me-role]:text("HOST")');
      const ops = traffic.http.slice(mark).map((r) => r.op);
      assert.ok(ops.includes('RefreshToken'), `the token was refreshed for the new role: ${ops}`);
      const row = page.locator('[data-testid=listing]', { hasText: 'Loft by the canal' });
      await row.locator('[data-testid=listing-status]:text("DRAFT")').waitFor();
      await shot(page, flow, '02-host-listing-draft');

      const before = traffic.http.length;
      await row.locator('[data-testid=publish]').click();
      await row.locator('[data-testid=listing-status]:text("PUBLISHED")').waitFor();
      await row.locator('[data-testid=archive]').click();
      await row.locator('[data-testid=listing-status]:text("ARCHIVED")').waitFor();
      assert.deepEqual(traffic.http.slice(before).map((r) => r.op), ['UpdatePropertyStatus', 'UpdatePropertyStatus'], 'updated in place from the results');
      await shot(page, flow, '03-archived');
      await page.click('a:text("Bookings of my listings")');
      await page.waitForSelector('[data-testid=host-bookings]', { state: 'attached' });

      // The playground: GraphiQL bundled, introspection through the router with the token,
      // a subscription over notifications' socket with the token in connection_init.
      const httpAuth = [];
      page.on('request', (r) => {
        if (r.url() === draftr.graphqlUrl && r.method() === 'POST') httpAuth.push(r.headers().authorization ?? null);
      });
      await page.click('a:text("Playground")');
      await page.waitForSelector('.graphiql-container');
      await waitFor('GraphiQL to introspect the schema', () => httpAuth.some((a) => a?.startsWith('Bearer ')));
      await page.click('.graphiql-query-editor .monaco-editor');
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText('subscription Live { bookingConfirmed { reservationId propertyTitle } }');
      await sleep(500); // GraphiQL picks the operation name from the parsed text
      await page.click('.graphiql-execute-button');
      const sub = await waitFor('the playground subscription on the socket', () =>
        traffic.frames.find((f) => f.dir === 'out' && f.msg?.type === 'subscribe' && f.msg.payload?.query?.includes('subscription Live')),
      );
      assert.equal(sub.url, draftr.wsUrl, 'subscriptions go to notifications /ws');
      const init = traffic.frames.find((f) => f.socket === sub.socket && f.dir === 'out' && f.msg?.type === 'connection_init');
      assert.match(init?.msg.payload?.authorization ?? '', /^Bearer /, 'the token is in connection_init');
      assert.ok(traffic.frames.some((f) => f.socket === sub.socket && f.msg?.type === 'connection_ack'), 'the socket accepted it');
      await shot(page, flow, '04-playground');
    } finally {
      await context.close();
    }
  });
});
