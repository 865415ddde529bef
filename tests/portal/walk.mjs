// The citizen portal in real headless Chromium (playwright-core driving the system's /usr/bin/chromium),
// with a real interactive login at the OIDC provider (tests/oidc/provider.mjs, its development login page):
//
//   PORTAL_URL=http://127.0.0.1:PORT CITIZEN_A=… CITIZEN_B=… A_REQUEST=… B_REQUEST=… \
//     SCREENSHOT_DIR=… node walk.mjs
//
// Citizen A logs in, walks every page in Swedish and, after the language switch, in English, with axe-core
// on each (zero serious or critical violations, no Content-Security-Policy violation), grants the pending
// request named A_REQUEST, opens and downloads its receipt, withdraws, and sees the withdrawal notice. Forged
// form posts (a wrong token, another session's token, a form on another site) are refused. Citizen B, in
// another browser, sees B_REQUEST and nothing of A's. Both log out through the provider's end-session page.
// Screenshots of every page go to SCREENSHOT_DIR. Exits non-zero on the first failure; the last line is
// "N passed, 0 failed".
//
// PHASE splits the walk so that a test can act between the parts (data flowing to a recipient, the
// recipient acknowledging a withdrawal); each phase logs in afresh:
//   all (the default)  everything above in one go;
//   grant              A logs in, walks the pages in Swedish, sees A_REQUEST, refuses forged posts, grants,
//                      opens and downloads the receipt;
//   withdraw           A sees the recipient EXPECT_RECIPIENT under "who received my data" and withdraws;
//   acknowledged       A sees the withdrawal's notice acknowledged and the deletion confirmed, switches to
//                      English and walks every page again; B sees nothing of A's (A_RECORD: A's record);
//                      forged posts are refused; both log out;
//   demo-login         the login at `caap demo`'s own provider (its page checked with axe in both
//                      languages): A and B log in and each sees their own request only.

import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) {
    throw new Error(`${name} is not set`);
  }
  return v;
};
const portal = env('PORTAL_URL').replace(/\/$/, '');
const citizenA = env('CITIZEN_A');
const citizenB = env('CITIZEN_B');
const requestA = env('A_REQUEST');
const requestB = env('B_REQUEST', ''); // empty: B has no request
const expectNotice = env('EXPECT_NOTICE', '1') === '1'; // a withdrawal notice (the data reached a recipient)
const shots = env('SCREENSHOT_DIR');
const phase = env('PHASE', 'all');
if (!['all', 'grant', 'withdraw', 'acknowledged', 'demo-login'].includes(phase)) {
  throw new Error(`PHASE ${phase} is not all, grant, withdraw, acknowledged or demo-login`);
}
const runs = (...phases) => phase === 'all' || phases.includes(phase);
mkdirSync(shots, { recursive: true });

let passed = 0;
function check(condition, what) {
  if (!condition) {
    throw new Error(`FAILED: ${what}`);
  }
  passed += 1;
  console.log(`ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
});

/** A fresh browser (its own cookies) speaking `locale`, collecting CSP violations. */
async function newCitizenBrowser(locale) {
  const context = await browser.newContext({ locale, acceptDownloads: true, viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.cspViolations = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) {
      page.cspViolations.push(msg.text());
    }
  });
  return { context, page };
}

/** axe-core on the page as it is: zero serious or critical violations (WCAG 2.0/2.1 A and AA). */
async function accessible(page, name) {
  // Evaluated through the DevTools protocol, which the page's CSP does not apply to.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) {
    console.log(`  ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  }
  check(bad.length === 0, `${name}: axe finds no serious or critical violation (${result.passes.length} rules pass)`);
  check(page.cspViolations.length === 0, `${name}: no Content-Security-Policy violation ${page.cspViolations.join(' | ')}`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** Logs in at the provider's development login page; answers the page back in the portal. */
async function login(page, who, buttonText) {
  await page.goto(`${portal}/`);
  await page.getByRole('link', { name: buttonText }).click();
  if (phase === 'demo-login') {
    // The demo's provider: a page of synthetic citizens, one button each (and no JavaScript).
    await page.waitForSelector('ul.demo-citizens');
    const lang = await page.getAttribute('html', 'lang');
    await accessible(page, `demo-provider-${lang}`);
    await page.getByRole('button', { name: new RegExp(who) }).click();
    await page.waitForURL(`${portal}/`);
    return;
  }
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', who);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
  // The provider asks a native (loopback) client's user to confirm once more (RFC 8252 §8.6).
  await page.waitForURL((url) => url.href === `${portal}/` || url.pathname.startsWith('/interaction/'));
  if (page.url() !== `${portal}/`) {
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${portal}/`);
  }
}

async function heading(page) {
  return (await page.locator('h1').innerText()).trim();
}

async function text(page) {
  return page.locator('body').innerText();
}

/** POSTs a form to the portal from this browser's cookies; answers the status. */
async function post(page, path, form) {
  const res = await page.request.post(`${portal}${path}`, { form, maxRedirects: 0 });
  return res.status();
}

const pages = [
  ['overview', '/'],
  ['requests', '/requests'],
  ['consents', '/consents'],
  ['history', '/history'],
  ['recipients', '/recipients'],
  ['notices', '/notices'],
];

/** The name of a screenshot, prefixed with the phase when the walk runs in phases. */
const shot = (name) => (phase === 'all' ? name : `${phase}-${name}`);

try {
  // Citizen A, Swedish by the browser's language.
  const a = await newCitizenBrowser('sv-SE');
  await a.page.goto(`${portal}/`);
  check((await a.page.getAttribute('html', 'lang')) === 'sv', 'a visitor gets Swedish by Accept-Language');
  await accessible(a.page, shot('welcome-sv'));
  await login(a.page, citizenA, 'Logga in med e-legitimation');
  check((await heading(a.page)) === 'Översikt', 'citizen A is logged in and sees the overview');
  const cookies = await a.context.cookies();
  const session = cookies.find((c) => c.name.startsWith('caap_portal') && c.name !== 'caap_portal_lang'
    && c.name !== 'caap_portal_login');
  check(session && session.httpOnly && session.sameSite === 'Lax', 'the session cookie is HttpOnly and SameSite=Lax');
  check(!cookies.some((c) => c.value.includes(citizenA)), 'no cookie carries the identity number');

  // Keyboard: the first Tab reaches the skip link, which moves focus to the main content.
  await a.page.keyboard.press('Tab');
  check((await a.page.evaluate(() => document.activeElement?.className)) === 'skip', 'the first Tab reaches the skip link');
  await a.page.keyboard.press('Enter');
  check((await a.page.evaluate(() => document.activeElement?.id)) === 'main', 'the skip link moves focus to the main content');

  for (const [name, path] of pages) {
    await a.page.goto(`${portal}${path}`);
    await accessible(a.page, shot(`${name}-sv`));
  }
  // (B's request may be for the same dataset as A's: then the records, not the titles, tell them apart.)
  const distinct = requestB && requestB !== requestA;
  if (distinct) {
    check(!(await text(a.page)).includes(requestB), "A sees nothing of B's");
  }

  // A's record and a form token of A's session (set by the grant, or given for the later phases).
  let record = process.env.A_RECORD;
  let grantHref = record && `/decide/${encodeURIComponent(record)}/grant`;
  let csrfA = await a.page.locator('input[name="csrf"]').first().inputValue();

  if (phase === 'demo-login') {
    await a.page.goto(`${portal}/requests`);
    check((await text(a.page)).includes(requestA), 'A sees the pending request');
    const b = await newCitizenBrowser('en-GB');
    await login(b.page, citizenB, 'Log in with e-ID');
    check((await heading(b.page)) === 'Overview', 'citizen B is logged in and sees the overview');
    await b.page.goto(`${portal}/requests`);
    check((await text(b.page)).includes(requestB), 'B sees their own request');
    check(!(await text(b.page)).includes(requestA), "B sees nothing of A's");
  }

  if (runs('grant')) {
    // Grant: one action, one confirmation.
    await a.page.goto(`${portal}/requests`);
    check((await text(a.page)).includes(requestA), 'A sees the pending request');
    if (distinct) {
      check(!(await text(a.page)).includes(requestB), "A does not see B's request");
    }
    const grantLink = a.page.getByRole('link', { name: 'Ge samtycke' }).first();
    grantHref = await grantLink.getAttribute('href');
    record = decodeURIComponent(grantHref.split('/')[2]);
    await grantLink.click();
    await accessible(a.page, 'confirm-grant-sv');
    csrfA = await a.page.locator('input[name="csrf"]').first().inputValue();

    // Forged posts before the real one: none changes anything.
    check((await post(a.page, grantHref, { csrf: 'forged' })) === 403, 'a post with a wrong token is refused (403)');
    check((await post(a.page, grantHref, {})) === 403, 'a post without a token is refused (403)');

    await a.page.getByRole('button', { name: 'Ja, ge samtycke' }).click();
    await a.page.waitForURL(`${portal}/consents`);
    check((await a.page.locator('[role="status"]').innerText()).includes(requestA), 'the grant is confirmed on the next page');
    check((await text(a.page)).includes('Samtycke givet'), 'the consent is given');
    await accessible(a.page, 'consents-granted-sv');

    // The receipt: readable page and signed JSON-LD download.
    await a.page.goto(`${portal}/history`);
    await accessible(a.page, 'history-granted-sv');
    await a.page.getByRole('link', { name: `Visa kvittot för ${requestA}` }).first().click();
    check((await heading(a.page)) === 'Kvitto', 'the receipt opens as a page');
    await accessible(a.page, 'receipt-sv');
    const [download] = await Promise.all([
      a.page.waitForEvent('download'),
      a.page.getByRole('link', { name: 'Ladda ner kvittot (JSON-LD)' }).click(),
    ]);
    const receipt = JSON.parse(readFileSync(await download.path(), 'utf8'));
    check(JSON.stringify(receipt).includes('ConsentReceipt'), `the receipt downloads as JSON-LD (${download.suggestedFilename()})`);
  }

  if (runs('withdraw')) {
    const recipient = process.env.EXPECT_RECIPIENT;
    if (recipient) {
      // The data reached the recipient: who, which data and how many records, from the transfer log.
      await a.page.goto(`${portal}/recipients`);
      const rows = await a.page.locator('tbody tr').allInnerTexts();
      check(rows.some((r) => r.toLowerCase().includes(recipient.toLowerCase()) && r.includes(requestA)),
        `A sees that ${recipient} received ${requestA} (${rows.join(' | ').replace(/\s+/g, ' ')})`);
      await accessible(a.page, shot('recipients-delivered-sv'));
    }
    // Withdraw: as easy as granting.
    await a.page.goto(`${portal}/consents`);
    await a.page.getByRole('link', { name: 'Återkalla samtycke' }).first().click();
    await accessible(a.page, 'confirm-withdraw-sv');
    await a.page.getByRole('button', { name: 'Ja, återkalla' }).click();
    await a.page.waitForURL(`${portal}/notices`);
    if (expectNotice) {
      check((await text(a.page)).includes(requestA), 'the withdrawal notice is listed');
    }
    await accessible(a.page, shot('notices-withdrawn-sv'));
  }

  if (runs('acknowledged')) {
    if (phase === 'acknowledged') {
      // The recipient answered: the notice is acknowledged and the deletion confirmed, in the citizen's words.
      await a.page.goto(`${portal}/notices`);
      const notices = await text(a.page);
      check(notices.includes(requestA) && notices.includes('Radering bekräftad') && notices.includes('Bekräftat'),
        'the recipient acknowledged the withdrawal and confirmed the deletion (Swedish)');
      await accessible(a.page, shot('notices-acknowledged-sv'));
    }

    // The language switch persists: every page again in English.
    await a.page.getByRole('link', { name: 'English' }).click();
    await a.page.waitForURL(`${portal}/notices`);
    check((await a.page.getAttribute('html', 'lang')) === 'en', 'the switch changes the language');
    for (const [name, path] of pages) {
      await a.page.goto(`${portal}${path}`);
      check((await a.page.getAttribute('html', 'lang')) === 'en', `${path} stays in English`);
      await accessible(a.page, shot(`${name}-en`));
    }
    if (phase === 'acknowledged') {
      await a.page.goto(`${portal}/notices`);
      const notices = await text(a.page);
      check(notices.includes(requestA) && notices.includes('Deletion confirmed') && notices.includes('Acknowledged'),
        'the recipient acknowledged the withdrawal and confirmed the deletion (English)');
    }
    await a.page.goto(`${portal}/history`);
    await a.page.getByRole('link', { name: `View the receipt for ${requestA}` }).first().click();
    await accessible(a.page, shot('receipt-en'));

    // Citizen B in another browser (English by Accept-Language): B's own request, nothing of A's.
    const b = await newCitizenBrowser('en-GB');
    await b.page.goto(`${portal}/`);
    await accessible(b.page, shot('welcome-en'));
    await login(b.page, citizenB, 'Log in with e-ID');
    // The overview lists the datasets the city shares about anyone like them (it may list A's dataset
    // too); every page about records must show nothing of A's.
    for (const [, path] of pages.filter(([name]) => name !== 'overview')) {
      await b.page.goto(`${portal}${path}`);
      // With a request for the same dataset, B's own request and its history carry the same title.
      if (requestB !== requestA) {
        check(!(await text(b.page)).includes(requestA), `B sees nothing of A's on ${path}`);
      }
      const html = await b.page.content();
      check(!html.includes(record) && !html.includes(encodeURIComponent(record)), `B's ${path} names none of A's records`);
    }
    await b.page.goto(`${portal}/requests`);
    if (requestB) {
      check((await text(b.page)).includes(requestB), 'B sees their own request');
    }
    await b.page.goto(`${portal}/decide/${encodeURIComponent(record)}/withdraw`);
    check((await heading(b.page)) === 'Page not found', "B cannot open A's consent");
    const csrfB = await b.page.locator('input[name="csrf"]').first().inputValue();
    check(csrfA !== csrfB, 'each session has its own form token');
    check((await post(a.page, grantHref, { csrf: csrfB })) === 403, "A's session with B's token is refused (403)");
    check((await post(b.page, grantHref, { csrf: csrfB })) === 404, "B's session posting on A's record is refused (404)");

    // A form on another site posting into A's session: the browser does not send the SameSite=Lax cookie,
    // and the portal would refuse the origin anyway.
    const evil = await a.context.newPage();
    await evil.setContent(`<form method="post" action="${portal}/decide/${encodeURIComponent(record)}/withdraw">`
      + `<input name="csrf" value="${csrfA}"><button>go</button></form>`);
    const [response] = await Promise.all([evil.waitForEvent('response'), evil.click('button')]);
    check(response.status() === 401 || response.status() === 403, `a cross-site form is refused (${response.status()})`);
    await evil.close();

    // Logout ends the session at the portal and at the provider.
    for (const [who, page, button, confirm] of [
      ['A', a.page, 'Log out', /yes, sign me out/i],
      ['B', b.page, 'Log out', /yes, sign me out/i],
    ]) {
      await page.goto(`${portal}/`);
      await page.getByRole('button', { name: button }).click();
      await page.getByRole('button', { name: confirm }).click();
      await page.waitForURL(`${portal}/`);
      check((await page.getByRole('link', { name: /Log in with e-ID|Logga in med e-legitimation/ }).count()) === 1,
        `${who} is logged out and back on the start page`);
      await page.goto(`${portal}/consents`);
      check((await heading(page)) === 'Log in' || (await heading(page)) === 'Logga in', `${who}'s session is gone`);
    }
    await accessible(a.page, shot('login-needed-en'));
  }
  await browser.close();
  console.log(`${passed} passed, 0 failed`);
} catch (e) {
  console.log(e.message);
  let n = 0;
  for (const context of browser.contexts()) {
    for (const page of context.pages()) {
      n += 1;
      const body = await page.locator('body').innerText().catch(() => '');
      console.log(`page ${n} at ${page.url()}:\n${body.slice(0, 1500)}`);
      await page.screenshot({ path: join(shots, `failure-${n}.png`), fullPage: true }).catch(() => {});
    }
  }
  await browser.close();
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
}
