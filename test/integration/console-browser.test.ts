/**
 * The review console in a real browser (Debian's chromium driven by playwright-core) against a real service
 * (risk workers, settlement, archiver into a fresh PostgreSQL database): an analyst signs in, takes, releases and
 * cancels; a release above four eyes waits until a supervisor approves it; a case another analyst holds is refused;
 * the audit trail shows who did what. Screenshots go to test-results/ (and to docs/console-*.png, shown in the
 * README, when missing or with RISKMON_UPDATE_SCREENSHOTS=1).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveDb, type ArchiveDb } from '../../src/archive/database.ts';
import { ApiUsers } from '../../src/api/users.ts';
import type { Service } from '../../src/service.ts';
import { program } from '../helpers/binaries.ts';
import { testCharge } from '../helpers/charges.ts';
import { ROOT } from '../helpers/deploy.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';
import { archiveCaughtUp, startTestService, stopTestService } from '../helpers/service.ts';

const chromiumBinary = program('/usr/bin/chromium', 'chromium');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const CARD = '6222021234567890128';

describe.skipIf(!chromiumBinary.available || skipWithoutPostgres())('review console in Chromium', () => {
  let database: TestDatabase;
  let db: ArchiveDb;
  let service: Service & { http: NonNullable<Service['http']> };
  let browser: Browser;
  const tokens: Record<string, string> = {};
  const caseOf: Record<string, string> = {};
  let ns = '';
  let consoleUrl = '';

  async function screenshot(page: Page, name: string): Promise<void> {
    mkdirSync(`${ROOT}test-results`, { recursive: true });
    const path = `${ROOT}test-results/${name}.png`;
    await page.screenshot({ path, fullPage: true });
    const docs = `${ROOT}docs/${name}.png`;
    if (!existsSync(docs) || process.env.RISKMON_UPDATE_SCREENSHOTS === '1') copyFileSync(path, docs);
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.goto(`${consoleUrl}/login`);
    await page.fill('#token', token);
    await page.click('button:has-text("Sign in")');
    await page.waitForURL(consoleUrl);
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    service = await startTestService({
      components: ['risk', 'settlement', 'archive'],
      env: { DATABASE_URL: database.url },
      namespacePrefix: 'console',
      overrides: { cases: { fourEyesAboveFen: 50_000 } },
    });
    consoleUrl = `${service.http.url}/console`;
    for (let i = 0; i < 100 && !service.archive; i++) await new Promise((r) => setTimeout(r, 100));
    db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
    const users = new ApiUsers(db);
    for (const [name, role] of [['ana.li', 'analyst'], ['ben.wu', 'analyst'], ['sup.wang', 'supervisor']] as const) tokens[name] = (await users.add(name, role)).token;

    const { context } = service;
    ns = context.keys.namespace;
    const clock = Date.now();
    const producer = await context.openProducer({ clock: () => clock });
    // Three charges on one card within ten minutes: the third is held for review. The small ones' deadlines first.
    for (const [user, amount, daysAgo] of [['a', 1_280, 2], ['b', 3_650, 1], ['c', 2_500, 1], ['big', 86_000, 0]] as const) {
      for (let i = 0; i < 3; i++) {
        const at = clock - daysAgo * 86_400_000 - (30 - i * 4) * 60_000;
        producer.send(testCharge({ eventId: `${ns}-${user}-${i}`, userId: `${ns}-${user}`, merchantId: i === 2 ? 'm-electronics' : 'm-cafe', cardId: CARD, amount: i < 2 ? 1_800 + i * 700 : amount, occurredAt: new Date(at).toISOString() }));
      }
      caseOf[user] = `${ns}-${user}-2`;
    }
    await producer.flush();
    await producer.close();
    const deadline = Date.now() + 20_000;
    while ((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.cases WHERE namespace = $1`, [ns])).rows[0]!.n < 4) {
      if (Date.now() > deadline) throw new Error('the cases were not archived');
      await new Promise((r) => setTimeout(r, 100));
    }
    await archiveCaughtUp(service);
    browser = await chromium.launch({ executablePath: chromiumBinary.path, args: FLAGS, timeout: 30_000 });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    if (service) await stopTestService(service);
    await db?.close();
    await database?.drop();
  });

  it('sends a visitor without a session to sign in, and refuses a wrong token', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(consoleUrl);
      expect(page.url()).toBe(`${consoleUrl}/login`);
      await page.fill('#token', `rmk_${'x'.repeat(43)}`);
      await page.click('button:has-text("Sign in")');
      await expect(page.locator('.banner.error').textContent()).resolves.toMatch(/unknown or revoked token/);
    } finally {
      await page.close();
    }
  });

  it('an analyst takes, releases and cancels; a release above four eyes waits for a supervisor', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      await signIn(page, tokens['ana.li']!);
      const cookie = (await context.cookies()).find((c) => c.name === 'riskmon_console')!;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
      expect(await page.locator('#cases tbody tr').count()).toBe(4);
      await screenshot(page, 'console-queue');

      // The next case is one due first: a small one (the large one's deadline is a day later).
      await page.click('button:has-text("Take the next case")');
      await page.waitForURL(/\/cases\//);
      const first = decodeURIComponent(page.url().split('/cases/')[1]!);
      expect([caseOf.a, caseOf.b, caseOf.c]).toContain(first);
      const body = await page.locator('main').textContent();
      expect(body).toContain('same_card_burst');
      expect(body).toContain('ana.li until');
      expect(body).toContain('****0128');
      expect(body).not.toContain(CARD);
      expect(await page.locator('table').first().locator('tbody tr').count()).toBe(2);
      await screenshot(page, 'console-case');
      await page.fill('textarea[name="note"]', 'regular customer, same café every morning');
      await page.click('button:has-text("Release")');
      await page.waitForURL(/done=release/);
      expect(await page.locator('.banner.info').textContent()).toMatch(/^Released: paid at its T\+1 instant/);
      expect(await page.locator('.grid').first().textContent()).toContain('released by ana.li');

      await page.goto(consoleUrl);
      await page.click('button:has-text("Take the next case")');
      await page.waitForURL(/\/cases\//);
      const second = decodeURIComponent(page.url().split('/cases/')[1]!);
      expect([caseOf.a, caseOf.b, caseOf.c].filter((id) => id !== first)).toContain(second);
      await page.fill('textarea[name="reason"]', 'card reported stolen');
      await page.click('button:has-text("Cancel the charge")');
      await page.waitForURL(/done=cancel/);
      expect(await page.locator('.grid').first().textContent()).toMatch(/cancelled by ana\.li/);

      // Above four eyes: the release waits, and the analyst has nothing more to do on it.
      await page.goto(`${consoleUrl}/cases/${encodeURIComponent(caseOf.big!)}`);
      await page.fill('textarea[name="note"]', 'large but usual for this user');
      await page.click('button:has-text("Release")');
      await page.waitForURL(/done=release/);
      expect(await page.locator('.banner.info').textContent()).toMatch(/waits for a supervisor's approval/);
      expect(await page.locator('button:has-text("Approve")').count()).toBe(0);
      await page.click('button:has-text("Sign out")');
      await page.waitForURL(`${consoleUrl}/login`);
    } finally {
      await context.close();
    }
  });

  it('a supervisor approves the release; a case another analyst holds is refused; the audit trail shows it all', async () => {
    // Ben holds the last open case.
    const held = await fetch(`${service.http.url}/api/cases/next`, { method: 'POST', headers: { Authorization: `Bearer ${tokens['ben.wu']}` } });
    expect(held.status).toBe(200);
    const heldId = ((await held.json()) as { id: string }).id;

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      await signIn(page, tokens['sup.wang']!);
      await page.click('a:has-text("Approvals")');
      await page.waitForURL(`${consoleUrl}/approvals`);
      expect(await page.locator('#cases tbody tr').count()).toBe(1);
      await screenshot(page, 'console-approvals');
      await page.click(`a:has-text("${caseOf.big}")`);
      await page.waitForURL(/\/cases\//);
      expect(await page.locator('main').textContent()).toContain('Release asked by');
      await page.fill('textarea[name="note"]', 'checked with the merchant');
      await page.click('button:has-text("Approve")');
      await page.waitForURL(/done=approve/);
      expect(await page.locator('.grid').first().textContent()).toMatch(/released by sup\.wang .*approved by sup\.wang/);

      await page.goto(`${consoleUrl}/cases/${encodeURIComponent(heldId)}`);
      await page.click('button:has-text("Release")');
      expect(await page.locator('.banner.error').textContent()).toMatch(/is held by ben\.wu/);

      await archiveCaughtUp(service);
      await page.goto(`${consoleUrl}/audit`);
      const trail = await page.locator('table.trail').textContent();
      for (const line of ['ana.li', 'sup.wang', 'ben.wu', 'approved', 'cancelled', 'release requested']) expect(trail).toContain(line);
      await screenshot(page, 'console-audit');
    } finally {
      await context.close();
    }
  });

  it('shows an analyst no audit trail (the API answers 403), and a cross-site POST is refused', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await signIn(page, tokens['ben.wu']!);
      expect(await page.locator('a:has-text("Audit trail")').count()).toBe(0);
      const res = await page.goto(`${consoleUrl}/audit`);
      expect(res!.status()).toBe(403);
      expect(await page.locator('.banner.error').textContent()).toMatch(/needs the supervisor role/);
      const forged = await page.request.post(`${consoleUrl}/cases/${encodeURIComponent(caseOf.c!)}/cancel`, { headers: { Origin: 'https://evil.example' }, form: { reason: 'x' } });
      expect(forged.status()).toBe(403);
      // The same host under https (a TLS proxy in front) is this site: not refused (no session: to the sign-in page).
      const host = new URL(consoleUrl).host;
      const proxied = await fetch(`${consoleUrl}/next`, { method: 'POST', headers: { Origin: `https://${host}` }, redirect: 'manual' });
      expect(proxied.status).toBe(302);
      expect(proxied.headers.get('location')).toBe('/console/login');
    } finally {
      await context.close();
    }
  });
});
