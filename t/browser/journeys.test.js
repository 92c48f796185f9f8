'use strict';
/*
 * The web UI's journeys in a real browser: playwright-core drives Debian's
 * chromium (headless) against the real nginx + module + ticketd that
 * t/integration/test_web_browser.py started.  Three people in three browser
 * contexts: a new user (signed up here), the moderator and the admin (made
 * through the API by the wrapper).  Every check waits for what a person
 * would see (text, a badge, a dot) to appear, without reloading the page
 * where the feature is "live"; nothing sleeps.  Every main page is
 * screenshotted and audited with axe-core (WCAG 2 A/AA, serious and
 * critical findings fail).
 *
 * Prints one "ok"/"not ok" line per check (TAP-like), stops at the first
 * failure (the journeys build on each other) with a screenshot of the page,
 * and exits 0 when all passed.  Screenshots of the main pages go to
 * SCREENSHOT_DIR.
 */
const fs = require('fs');
const path = require('path');
const assert = require('assert/strict');
const { chromium } = require('playwright-core');

const cfg = {
  base: process.env.BASE_URL,
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  shots: process.env.SCREENSHOT_DIR || path.join(__dirname, 'screenshots'),
  password: process.env.PASSWORD,
  adminEmail: process.env.ADMIN_EMAIL,
  modUsername: process.env.MOD_USERNAME,
  takenUsername: process.env.TAKEN_USERNAME,
  rejectedUsername: process.env.REJECTED_USERNAME,
  username: process.env.USERNAME,
  summary: process.env.TRIAGE_SUMMARY,
};
for (const [k, v] of Object.entries(cfg)) {
  if (!v) {
    console.log(`not ok - missing configuration ${k}`);
    process.exit(2);
  }
}

const LIVE_MS = 15000; // triage + assignment through the delayed fake
const UI_MS = 8000;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

let count = 0;
const pageErrors = [];
let current = null; // the page a failing check was about

async function check(name, page, fn) {
  count += 1;
  current = page;
  const t0 = Date.now();
  await fn();
  console.log(`ok ${count} - ${name} (${Date.now() - t0} ms)`);
}

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/* axe-core's WCAG 2 A/AA rules on the page as it is: serious or critical
   violations (contrast, missing labels, keyboard traps…) fail the check. */
async function audit(page, name) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.addScriptTag({ content: AXE });
  const r = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${name}: ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`), []);
}

/* A screenshot of a main page, which must also pass the accessibility audit. */
async function shot(page, name) {
  fs.mkdirSync(cfg.shots, { recursive: true });
  await page.screenshot({ path: path.join(cfg.shots, `${name}.png`), fullPage: true });
  await audit(page, name);
}

function watch(page, who) {
  page.setDefaultTimeout(UI_MS);
  page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) {
      pageErrors.push(`${who} console: ${m.text()}`);
    }
  });
  return page;
}

/* Wait until text is visible on the page (or inside a locator). */
async function see(scope, text, timeout = UI_MS) {
  await scope.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout });
}

async function login(page, identifier, { keyboard = false } = {}) {
  await page.goto(`${cfg.base}/login`);
  if (keyboard) {
    // keyboard only: the fields have labels and Enter submits
    await page.getByLabel('Email or username').focus();
    await page.keyboard.type(identifier);
    await page.keyboard.press('Tab');
    await page.keyboard.type(cfg.password);
    await page.keyboard.press('Enter');
  } else {
    await page.getByLabel('Email or username').fill(identifier);
    await page.getByLabel('Password', { exact: true }).fill(cfg.password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await page.getByRole('heading', { name: 'Tickets', exact: true }).waitFor({ timeout: UI_MS });
}

async function connected(page) {
  await page.locator('[data-testid="connection"][data-state="connected"]').waitFor({ timeout: UI_MS });
}

async function main() {
  fs.rmSync(path.join(cfg.shots, 'failure.png'), { force: true }); // from an earlier run
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    args: FLAGS,
    headless: true,
  });
  const desktop = { viewport: { width: 1280, height: 900 } };
  const userCtx = await browser.newContext(desktop);
  const modCtx = await browser.newContext(desktop);
  const adminCtx = await browser.newContext(desktop);
  const user = watch(await userCtx.newPage(), 'user');
  const mod = watch(await modCtx.newPage(), 'moderator');
  const admin = watch(await adminCtx.newPage(), 'admin');
  const title = `nginx 502 after deploy ${Date.now()}`;
  let ticketUrl = null;

  try {
    console.log(`# chromium ${browser.version()} against ${cfg.base}`);

    await check('the UI is served at / with an SPA fallback and cached assets', user, async () => {
      const r = await user.request.get(`${cfg.base}/tickets/does-not-exist-yet`);
      assert.equal(r.status(), 200);
      assert.match(r.headers()['content-type'], /text\/html/);
      assert.equal(r.headers()['cache-control'], 'no-cache');
      const html = await r.text();
      const asset = html.match(/\/assets\/[^"]+\.js/);
      assert.ok(asset, html);
      const a = await user.request.get(`${cfg.base}${asset[0]}`);
      assert.equal(a.status(), 200);
      assert.match(a.headers()['content-type'], /javascript/);
      assert.match(a.headers()['cache-control'], /immutable/);
      const api = await user.request.get(`${cfg.base}/api/health`);
      assert.equal((await api.json()).status, 'ok');
    });

    await check('the moderator logs in and is live', mod, async () => {
      await login(mod, cfg.modUsername);
      await connected(mod);
      await shot(mod, '02-moderator-tickets');
    });

    await check('signup shows the server error, then creates the account', user, async () => {
      await user.goto(`${cfg.base}/`);
      await user.getByRole('heading', { name: 'Log in' }).waitFor(); // redirected
      await shot(user, '00-login');
      await user.getByRole('link', { name: 'Sign up' }).click();
      await user.getByLabel('Username', { exact: true }).fill(cfg.takenUsername);
      await user.getByLabel('Email', { exact: true }).fill(`${cfg.username}@example.com`);
      await user.getByLabel('Password', { exact: true }).fill(cfg.password);
      await user.getByLabel('Skills (optional)').fill('linux');
      await user.getByRole('button', { name: 'Sign up' }).click();
      await see(user.getByRole('alert'), 'Username already taken');
      await shot(user, '01-signup-error');
      await user.getByLabel('Username', { exact: true }).fill(cfg.username);
      await user.getByRole('button', { name: 'Sign up' }).click();
      await user.getByRole('heading', { name: 'Tickets', exact: true }).waitFor();
      await connected(user);
      await see(user, 'No tickets here yet');
    });

    await check('the user files a ticket and sees it triaged and assigned live', user, async () => {
      await user.getByRole('button', { name: '+ New ticket' }).click();
      await user.getByLabel('Title', { exact: true }).fill(title);
      await user.getByLabel('Description', { exact: true }).fill(
        'Since the docker deploy this morning nginx answers 502 Bad Gateway on every page.');
      await user.getByRole('button', { name: 'Submit ticket' }).click();
      await see(user, 'Ticket created and processing started');
      await user.locator('[data-kpi="Total"]', { hasText: '1' }).waitFor();
      await user.getByRole('link', { name: title }).click();
      await user.getByRole('heading', { name: title }).waitFor();
      ticketUrl = user.url();
      // the fake answers after 1.5 s: first "analysing", then live results
      await user.getByTestId('triage-pending').waitFor({ timeout: UI_MS });
      const navigations = [];
      user.on('framenavigated', (f) => { if (f === user.mainFrame()) navigations.push(f.url()); });
      await see(user.getByTestId('summary'), cfg.summary, LIVE_MS);
      await see(user.getByTestId('ticket-badges'), 'High priority', UI_MS);
      await see(user.getByTestId('assigned-to'), cfg.modUsername, LIVE_MS);
      await see(user.getByTestId('ticket-badges'), 'In Progress', UI_MS);
      assert.deepEqual(navigations, [], 'the page reloaded');
      // the triage's notes and the assignment explanation are for staff
      assert.equal(await user.getByTestId('notes').count(), 0);
      assert.equal(await user.getByRole('heading', { name: 'Why this assignment' }).count(), 0);
      await see(user.getByTestId('comment-hint'), 'moderator opens the conversation');
      await shot(user, '04-user-ticket-triaged');
    });

    await check('the moderator sees the ticket, the explanation and the user online', mod, async () => {
      await mod.reload();
      await mod.getByRole('link', { name: title }).click();
      await mod.getByRole('heading', { name: 'Why this assignment' }).waitFor();
      const table = mod.getByTestId('assignment');
      await see(table, cfg.modUsername);
      await table.locator('tr', { hasText: 'chosen' }).waitFor();
      await mod.locator('[data-testid="assigned-to"] [data-presence="online"]').waitFor();
      // the notes for staff: Markdown rendered, raw HTML not
      const notes = mod.getByTestId('notes');
      await notes.locator('strong', { hasText: 'Check the upstream' }).waitFor();
      assert.equal(await notes.locator('li').count(), 2);
      assert.equal(await notes.locator('img, script').count(), 0);
      assert.equal(await mod.evaluate(() => window.__xss), undefined);
      await shot(mod, '05-moderator-ticket');
    });

    await journeySla(user, mod, title);

    await check('the moderator replies; the user sees it without reloading', user, async () => {
      const text = `Hello ${cfg.username}, I am checking the upstream now.`;
      await mod.getByLabel('Your reply').fill(text);
      await mod.getByRole('button', { name: 'Send' }).click();
      await see(mod.getByTestId('comments'), text);
      await see(user.getByTestId('comments'), text, UI_MS);
      // the conversation is open: the user can answer, the moderator sees it live
      const reply = 'Thanks, it started right after the deploy.';
      await user.getByLabel('Your reply').fill(reply);
      await user.getByRole('button', { name: 'Send' }).click();
      await see(mod.getByTestId('comments'), reply, UI_MS);
    });

    await check('presence: the moderator goes "do not disturb", the user sees it live', user, async () => {
      await mod.getByTestId('presence-button').click();
      await mod.getByRole('menuitemradio', { name: 'Do not disturb' }).click();
      await mod.locator('[data-testid="presence-button"] [data-presence="dnd"]').waitFor();
      await user.locator('[data-testid="assigned-to"] [data-presence="dnd"]').waitFor({ timeout: UI_MS });
      await mod.getByTestId('presence-button').click();
      await mod.getByRole('menuitemradio', { name: 'Online' }).click();
      await user.locator('[data-testid="assigned-to"] [data-presence="online"]').waitFor({ timeout: UI_MS });
    });

    await check('after the socket drops, the indicator says so and the room is re-joined', user, async () => {
      await user.evaluate(() => window.__ticketSocket.io.engine.close());
      await user.locator('[data-testid="connection"]:not([data-state="connected"])').waitFor({ timeout: UI_MS });
      await connected(user);
      const text = 'Found it: the upstream port changed. Fixed, please check.';
      await mod.getByLabel('Your reply').fill(text);
      await mod.getByRole('button', { name: 'Send' }).click();
      await see(user.getByTestId('comments'), text, UI_MS);
    });

    await journeyNotes({ user, mod });

    await check('the moderator completes the ticket; the user sees the status live', user, async () => {
      await mod.getByLabel(`Status of “${title}”`).selectOption('Completed');
      await see(mod.getByTestId('ticket-badges'), 'Completed');
      await see(user.getByTestId('ticket-badges'), 'Completed', UI_MS);
    });

    await check('the tickets list: KPIs, filters and search', user, async () => {
      await user.getByRole('link', { name: '← Back to tickets' }).click();
      await user.locator('[data-kpi="Completed"]', { hasText: '1' }).waitFor();
      await user.getByLabel('Status', { exact: true }).selectOption('To-Do');
      await see(user, 'No tickets here yet');
      await user.getByRole('button', { name: 'Clear filters' }).click();
      await user.getByLabel('Search title or description').fill('502 after deploy');
      await user.getByRole('button', { name: 'Search', exact: true }).click();
      await see(user, '1 ticket matches the filters');
      await user.getByRole('link', { name: title }).waitFor();
      await shot(user, '03-user-tickets');
    });

    await check('the user applies to become a moderator', user, async () => {
      await user.getByRole('link', { name: 'Become a moderator' }).first().click();
      await user.getByLabel('Your skills').fill('linux, nginx');
      await user.getByRole('button', { name: 'Submit application' }).click();
      await see(user, 'Request created');
      await see(user.getByTestId('request-status'), 'pending');
      await shot(user, '06-apply-pending');
    });

    await check('the admin logs in with the keyboard and accepts the request', admin, async () => {
      await login(admin, cfg.adminEmail, { keyboard: true });
      await admin.getByRole('link', { name: 'Moderator requests' }).first().click();
      const row = admin.locator(`[data-request="${cfg.username}"]`);
      await row.waitFor();
      await shot(admin, '07-admin-requests');
      await row.getByRole('button', { name: `Accept ${cfg.username}` }).click();
      await see(admin, `${cfg.username} is now a moderator`);
      await user.reload();
      await see(user.getByTestId('request-status'), 'accepted');
      await user.locator('[data-testid="presence-button"]', { hasText: 'moderator' }).waitFor();
    });

    await check('the admin sees users with moderator stats and edits skills', admin, async () => {
      await admin.getByRole('link', { name: 'Users' }).first().click();
      const row = admin.locator(`[data-user="${cfg.modUsername}"]`);
      await see(row, 'Resolved: 1', UI_MS);
      await row.getByRole('button', { name: `Edit ${cfg.modUsername}` }).click();
      await row.getByRole('textbox', { name: /^Skills/ }).fill('nginx, docker, kubernetes');
      await row.getByRole('button', { name: 'Save' }).click();
      await see(admin, 'User updated');
      await see(row, 'kubernetes');
      await shot(admin, '08-admin-users');
    });

    await check('the admin sees the ticket with its assignment explanation', admin, async () => {
      await admin.goto(ticketUrl);
      await admin.getByRole('heading', { name: 'Why this assignment' }).waitFor();
      await see(admin.getByTestId('comments'), 'upstream port changed');
      await shot(admin, '09-admin-ticket');
    });

    await check('analytics renders its figures and charts', admin, async () => {
      await admin.getByRole('link', { name: 'Analytics' }).first().click();
      await admin.getByRole('heading', { name: 'Analytics' }).waitFor();
      await admin.locator('[data-kpi="Tickets"]', { hasText: '1' }).waitFor();
      await admin.locator('[data-chart="Tickets by status"]').waitFor();
      await admin.getByRole('img', { name: /Tickets by status\. To-Do: 0, In Progress: 0, Completed: 1/ }).waitFor();
      await admin.getByRole('img', { name: /Daily tickets: 1 created and 1 resolved/ }).waitFor();
      assert.ok(await admin.locator('[data-chart="daily"] rect').count() >= 2);
      await see(admin, cfg.modUsername);
      await shot(admin, '10-admin-analytics');
    });

    await check('the admin changes a status inline in the tickets list', admin, async () => {
      await admin.getByRole('link', { name: 'Tickets', exact: true }).first().click();
      await admin.locator('[data-kpi="Completed"]', { hasText: '1' }).waitFor();
      await admin.getByLabel(`Status of “${title}”`).selectOption('In Progress');
      await admin.locator('[data-kpi="In Progress"]', { hasText: '1' }).waitFor();
      await admin.locator('[data-kpi="Completed"]', { hasText: '0' }).waitFor();
      await see(admin.locator('[data-ticket-id]', { hasText: title }), 'In Progress');
    });

    await journeyHistory({ user, mod, admin, title, ticketUrl });

    await check('at phone width the layout fits and the menu opens', user, async () => {
      const fits = async (page, what) => {
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `${what} is ${overflow}px wider than the phone`);
      };
      await user.setViewportSize({ width: 390, height: 844 });
      await user.goto(`${cfg.base}/`);
      await user.getByRole('link', { name: title }).waitFor();
      await fits(user, 'the tickets list');
      await shot(user, '11-phone-tickets');
      await user.goto(ticketUrl);
      await user.getByRole('heading', { name: title }).waitFor();
      await fits(user, 'the ticket page');
      await shot(user, '12-phone-ticket');
      await admin.setViewportSize({ width: 390, height: 844 });
      await admin.goto(`${cfg.base}/admin/analytics`);
      await admin.getByRole('img', { name: /Daily tickets/ }).waitFor();
      await fits(admin, 'analytics');
      await admin.goto(`${cfg.base}/admin/users`);
      await admin.locator(`[data-user="${cfg.modUsername}"]`).waitFor();
      await fits(admin, 'the users page');
      await user.getByRole('button', { name: 'Open navigation menu' }).click();
      await user.getByRole('link', { name: 'Tickets', exact: true }).first().waitFor();
    });

    await check('logout ends the session', user, async () => {
      await user.getByRole('button', { name: 'Logout' }).click();
      await user.getByRole('heading', { name: 'Log in' }).waitFor();
      await user.goto(`${cfg.base}/`);
      await user.getByRole('heading', { name: 'Log in' }).waitFor();
    });

    await check('a rejected applicant sees the rejection and the cooldown', user, async () => {
      await login(user, cfg.rejectedUsername);
      await user.getByRole('button', { name: 'Open navigation menu' }).click(); // phone width
      await user.getByRole('link', { name: 'Become a moderator' }).first().click();
      await see(user.getByTestId('request-status'), 'rejected');
      await see(user.getByTestId('cooldown'), '72 hours');
      assert.equal(await user.getByRole('button', { name: 'Submit application' }).count(), 0);
      await shot(user, '13-phone-apply-rejected');
    });

    await journeyAssignee(admin, mod);
    await journeyAccounts(browser);

    await check('no script errors on any page', null, async () => {
      assert.deepEqual(pageErrors, []);
    });

    console.log(`1..${count}`);
    console.log(`# all ${count} passed`);
  } catch (err) {
    console.log(`not ok ${count} - ${String(err && err.message ? err.message : err).split('\n')[0]}`);
    console.log(String(err && err.stack ? err.stack : err).split('\n').map((l) => `# ${l}`).join('\n'));
    if (pageErrors.length) console.log(`# page errors: ${pageErrors.join(' | ')}`);
    if (current) {
      try {
        fs.mkdirSync(cfg.shots, { recursive: true });
        await current.screenshot({ path: path.join(cfg.shots, 'failure.png'), fullPage: true });
        console.log(`# screenshot of the failing page: ${path.join(cfg.shots, 'failure.png')}`);
      } catch { /* the page may be gone */ }
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/* SLA (issue 15 item 3): the triaged ticket's SLA badge shows for the
   moderator on the ticket and in the list, never for the requester.  The
   lists are opened in new tabs of each person's browser, so the pages the
   other journeys use stay where they are. */
async function journeySla(user, mod, title) {
  await check('the SLA badge shows for the moderator, not for the requester', mod, async () => {
    const badge = mod.getByTestId('ticket-badges').getByTestId('sla-badge');
    await badge.waitFor({ timeout: LIVE_MS });
    assert.match(await badge.innerText(), /^(Response due in|SLA breached)/);
    const modList = await mod.context().newPage();
    await modList.goto(`${cfg.base}/`);
    await modList.locator('[data-ticket-id]', { hasText: title }).getByTestId('sla-badge').waitFor();
    await modList.close();

    // the requester's ticket is triaged (its priority shows), with no badge
    await see(user.getByTestId('ticket-badges'), 'High priority');
    assert.equal(await user.getByTestId('sla-badge').count(), 0);
    const userList = await user.context().newPage();
    await userList.goto(`${cfg.base}/`);
    const row = userList.locator('[data-ticket-id]', { hasText: title });
    await see(row, 'High priority');
    assert.equal(await row.getByTestId('sla-badge').count(), 0);
    await userList.close();
  });

  await check('a priority change moves the SLA dates; the requester sees the priority live', mod, async () => {
    const badge = mod.getByTestId('ticket-badges').getByTestId('sla-badge');
    const before = await badge.innerText();
    await mod.getByLabel(`Priority of “${title}”`).selectOption('Low');
    await see(mod.getByTestId('ticket-badges'), 'Low priority');
    await mod.waitForFunction((b) => {
      const el = document.querySelector('[data-testid="ticket-badges"] [data-testid="sla-badge"]');
      return el && el.textContent !== b;
    }, before);
    assert.match(await badge.innerText(), /^Response due in (2[34]\.?\d* h|1\.0 d)/);
    await see(user.getByTestId('ticket-badges'), 'Low priority');
    assert.equal(await user.getByTestId('sla-badge').count(), 0);
    await mod.getByLabel(`Priority of “${title}”`).selectOption('High');
    await see(mod.getByTestId('ticket-badges'), 'High priority');
    await see(user.getByTestId('ticket-badges'), 'High priority');
  });
}

/* Issue 15 item 1: the admin moves a ticket by hand, first to themselves
   (the moderator's list drops it live), then to the moderator (their list
   shows it live, without a reload). */
async function journeyAssignee(admin, mod) {
  const title = `Assign me by hand ${Date.now()}`;
  await check('the admin reassigns a ticket; the moderator\'s list follows live', admin, async () => {
    await admin.setViewportSize({ width: 1280, height: 900 });
    await mod.setViewportSize({ width: 1280, height: 900 });
    await mod.goto(`${cfg.base}/`);
    await mod.getByRole('heading', { name: 'Tickets', exact: true }).waitFor();
    await connected(mod);
    const navigations = [];
    mod.on('framenavigated', (f) => { if (f === mod.mainFrame()) navigations.push(f.url()); });
    const modRow = mod.locator('[data-ticket-id]', { hasText: title });

    await admin.goto(`${cfg.base}/`);
    await admin.getByRole('button', { name: '+ New ticket' }).click();
    await admin.getByLabel('Title', { exact: true }).fill(title);
    await admin.getByLabel('Description', { exact: true }).fill('The nginx upstream answers 502 since the deploy.');
    await admin.getByRole('button', { name: 'Submit ticket' }).click();
    await admin.getByRole('link', { name: title }).click();
    await admin.getByRole('heading', { name: title }).waitFor();
    const control = admin.getByTestId('assignee-control');
    const self = await admin.locator('#assignee-select option', { hasText: '(admin)' }).first().getAttribute('value');
    await admin.getByLabel('Assign to').selectOption(self);
    await control.getByRole('button', { name: 'Assign' }).click();
    await see(admin.getByTestId('assignment'), 'Assigned by hand');
    // by hand to the admin: not in the moderator's list (or gone from it)
    await modRow.waitFor({ state: 'detached', timeout: LIVE_MS });

    const modOption = admin.locator('#assignee-select option', { hasText: cfg.modUsername });
    await admin.getByLabel('Assign to').selectOption(await modOption.getAttribute('value'));
    await control.getByRole('button', { name: 'Assign' }).click();
    await see(admin.getByTestId('assigned-to'), cfg.modUsername);
    await see(modRow, title, LIVE_MS);
    assert.deepEqual(navigations, [], 'the moderator\'s page reloaded');
    await shot(admin, '16-admin-assignee');
  });
}

/* History and canned responses (issue 15 items 5 and 6): a moderator adds
   a canned response on its page and inserts it into a reply; the ticket's
   history timeline shows each change with who made it. */
async function journeyHistory({ user, mod, admin, title, ticketUrl }) {
  const canned = `Restart hint ${Date.now()}`;
  const body = 'Please restart the upstream service and tell us if it helps.';

  await check('a moderator adds a canned response on the team page', mod, async () => {
    await mod.goto(`${cfg.base}/canned`);
    await mod.getByRole('heading', { name: 'Canned responses' }).waitFor();
    const form = mod.getByTestId('canned-new');
    await form.getByLabel('Title').fill(canned);
    await form.getByLabel('Text').fill(body);
    await form.getByRole('button', { name: 'Add' }).click();
    await mod.locator(`[data-canned="${canned}"]`).waitFor();
    await shot(mod, '14-canned-responses');
  });

  await check('the reply box inserts the canned response; the user gets it', user, async () => {
    await mod.goto(ticketUrl);
    await mod.getByRole('heading', { name: title }).waitFor();
    await mod.getByLabel('Canned response').focus();
    await mod.getByTestId('canned-picker').locator('option', { hasText: canned }).waitFor({ state: 'attached' });
    await mod.getByLabel('Canned response').selectOption({ label: canned });
    assert.equal(await mod.getByLabel('Your reply').inputValue(), body);
    await mod.getByRole('button', { name: 'Send' }).click();
    await user.goto(ticketUrl);
    await see(user.getByTestId('comments'), body, UI_MS);
  });

  await check('the history timeline shows each change and who made it', admin, async () => {
    await admin.setViewportSize({ width: 1280, height: 900 });
    await admin.goto(ticketUrl);
    const h = admin.getByTestId('history');
    await see(h, 'Ticket filed');
    await h.locator('[data-action="assignee"]', { hasText: cfg.modUsername }).waitFor();
    await h.locator('[data-action="status"]', { hasText: `Completed` }).first().waitFor();
    await see(h.locator('[data-action="status"]').last(), 'In Progress');
    await shot(admin, '15-ticket-history');
    // the requester's page shows the same timeline, live after a change
    const uh = user.getByTestId('history');
    await uh.locator('[data-action="created"]').waitFor();
    const before = await uh.locator('li').count();
    await admin.getByLabel(`Status of “${title}”`).selectOption('Completed');
    await uh.locator('li').nth(before).waitFor({ timeout: UI_MS });
  });
}

/*
 * Internal notes (issue 15 item 2): the moderator writes one on the ticket
 * the user has open; the user's page never shows it, live or after a
 * reload, and no mail carries it (the outbox, when OUTBOX is given).  The
 * user and the moderator both have the ticket page open.
 */
async function journeyNotes({ user, mod }) {
  const note = 'Internal ZQX7: the refund looks risky, check the invoice';
  const reply = 'PUB9K: the fix is deployed, please check again.';
  await check('the moderator writes an internal note the user never sees', user, async () => {
    await mod.getByLabel('Internal note (staff only)').check();
    await mod.getByLabel('Your reply').fill(note);
    await mod.getByRole('button', { name: 'Send' }).click();
    const mine = mod.locator('[data-internal="true"]', { hasText: 'ZQX7' });
    await mine.getByTestId('internal-note').waitFor();
    // then a public reply: once the user has it live, they had all before
    assert.equal(await mod.getByLabel('Internal note (staff only)').isChecked(), false);
    await mod.getByLabel('Your reply').fill(reply);
    await mod.getByRole('button', { name: 'Send' }).click();
    await see(user.getByTestId('comments'), 'PUB9K', UI_MS);
    assert.equal(await user.getByText('ZQX7').count(), 0);
    assert.equal(await user.getByLabel('Internal note (staff only)').count(), 0);
    await shot(mod, '14-moderator-internal-note');
    await user.reload();
    await see(user.getByTestId('comments'), 'PUB9K');
    assert.equal(await user.getByText('ZQX7').count(), 0);
  });
  if (process.env.OUTBOX) {
    await check('the outbox mails the user the reply, never the note', user, async () => {
      const texts = () => (fs.existsSync(process.env.OUTBOX) ? fs.readdirSync(process.env.OUTBOX) : [])
        .filter((f) => f.endsWith('.eml'))
        .map((f) => fs.readFileSync(path.join(process.env.OUTBOX, f), 'latin1'));
      const deadline = Date.now() + UI_MS;
      while (!texts().some((t) => t.includes('PUB9K'))) {
        assert.ok(Date.now() < deadline, 'the reply was not mailed');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(texts().filter((t) => t.includes('ZQX7')).length, 0);
    });
  }
}

/* Accounts (issue 15 item 4): a user changes their password from the user
   menu and logs in with it; then forgets it, asks for a reset link, follows
   the link from the mail in the stack's outbox (OUTBOX) and logs in with
   the password set there.  Its own account and browser context. */
async function journeyAccounts(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = watch(await ctx.newPage(), 'accounts');
  const name = `acct_${Date.now()}`;
  const email = `${name}@example.com`;
  const second = `${cfg.password}-2nd`;
  const third = `${cfg.password}-3rd`;

  async function loginWith(password) {
    await page.goto(`${cfg.base}/login`);
    await page.getByLabel('Email or username').fill(name);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Tickets', exact: true }).waitFor();
  }

  /* The link of the newest reset mail to email in the outbox (its
     quoted-printable body decoded), waiting for the job runner. */
  async function resetLink() {
    const deadline = Date.now() + LIVE_MS;
    for (;;) {
      const files = fs.existsSync(process.env.OUTBOX)
        ? fs.readdirSync(process.env.OUTBOX).filter((f) => f.endsWith('.eml')).sort() : [];
      for (const f of files.reverse()) {
        const raw = fs.readFileSync(path.join(process.env.OUTBOX, f), 'utf8');
        if (!raw.includes(email) || !/^Subject: Reset your password/m.test(raw)) continue;
        const body = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
        const m = body.match(/(\S*\/reset\?token=[A-Za-z0-9_-]+)/);
        assert.ok(m, `no reset link in ${f}`);
        return m[1];
      }
      assert.ok(Date.now() < deadline, `no reset mail to ${email} in ${process.env.OUTBOX}`);
      await new Promise((r) => { setTimeout(r, 100); });
    }
  }

  try {
    const r = await page.request.post(`${cfg.base}/api/auth/signup`,
      { data: { username: name, email, password: cfg.password } });
    assert.equal(r.status(), 200);

    await check('a user changes their password from the user menu, then logs in with it', page, async () => {
      await loginWith(cfg.password);
      await page.getByTestId('presence-button').click();
      await page.getByRole('menuitem', { name: 'Change password' }).click();
      await page.getByRole('heading', { name: 'Change password' }).waitFor();
      await page.getByLabel('Current password').fill('not-my-password');
      await page.getByLabel('New password', { exact: true }).fill(second);
      await page.getByLabel('New password again').fill(second);
      await page.getByRole('button', { name: 'Change password' }).click();
      await see(page, 'Current password is incorrect');
      await page.getByLabel('Current password').fill(cfg.password);
      await page.getByRole('button', { name: 'Change password' }).click();
      await see(page, 'Password changed');
      await connected(page); // this session goes on with its new token
      await shot(page, '20-change-password');
      await page.getByRole('button', { name: 'Logout' }).click();
      await page.getByRole('heading', { name: 'Log in' }).waitFor();
      await page.getByLabel('Email or username').fill(name);
      await page.getByLabel('Password', { exact: true }).fill(cfg.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await see(page, 'Invalid credentials');
      await loginWith(second);
      await page.getByRole('button', { name: 'Logout' }).click();
      await page.getByRole('heading', { name: 'Log in' }).waitFor();
    });

    await check('a forgotten password is reset through the mailed link', page, async () => {
      await page.getByRole('link', { name: 'Forgot password?' }).click();
      await page.getByRole('heading', { name: 'Forgot password' }).waitFor();
      await page.getByLabel('Email').fill(email);
      await page.getByRole('button', { name: 'Send reset link' }).click();
      await see(page, 'If an account with that email exists');
      await shot(page, '21-forgot-password');
      const link = await resetLink();
      await page.goto(link.startsWith('/') ? `${cfg.base}${link}` : link);
      await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
      await page.getByLabel('New password', { exact: true }).fill(third);
      await page.getByLabel('New password again').fill(third);
      await shot(page, '22-reset-password');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('heading', { name: 'Log in' }).waitFor();
      await see(page, 'Password reset');
      await loginWith(third);
      // the link works once
      await page.goto(link.startsWith('/') ? `${cfg.base}${link}` : link);
      await page.getByLabel('New password', { exact: true }).fill(second);
      await page.getByLabel('New password again').fill(second);
      await page.getByRole('button', { name: 'Set new password' }).click();
      await see(page, 'Invalid or expired reset token');
    });
  } finally {
    await ctx.close();
  }
}

const overall = setTimeout(() => {
  console.log('not ok - the browser journeys took more than 120 s');
  process.exit(1);
}, 120000);
main().finally(() => clearTimeout(overall));
