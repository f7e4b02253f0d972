/**
 * The queue dashboard in a real browser (Debian's chromium driven by playwright-core): without credentials the
 * answer is 401; logged in, every queue of the namespace is listed and no card number is shown. A screenshot is
 * saved to test-results/ (and to docs/queue-dashboard*.png, shown in the README, when missing or with
 * RISKMON_UPDATE_SCREENSHOTS=1).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feed } from '../../src/pipeline/feed.ts';
import { program } from '../helpers/binaries.ts';
import { ROOT } from '../helpers/deploy.ts';
import { startTestService, stopTestService, TEST_LOGIN } from '../helpers/service.ts';
import { decisionStreamLength } from '../helpers/shards.ts';

const chromiumBinary = program('/usr/bin/chromium', 'chromium');
const SCREENSHOT = `${ROOT}test-results/queue-dashboard.png`;
const DOCS_SCREENSHOT = `${ROOT}docs/queue-dashboard.png`;
const DOCS_JOBS_SCREENSHOT = `${ROOT}docs/queue-dashboard-jobs.png`;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe.skipIf(!chromiumBinary.available)('queue dashboard in Chromium', () => {
  let service: Awaited<ReturnType<typeof startTestService>>;
  let browser: Browser;
  let dashboard: string;

  beforeAll(async () => {
    service = await startTestService({ namespacePrefix: 'demo' });
    dashboard = `${service.http.url}/admin/queues`;
    const { context } = service;
    const summary = await feed({
      source: { kind: 'synthetic', count: 2_000, users: 200, seed: 4 },
      connection: context.queueConnection,
      keys: context.keys,
      config: context.settings.config,
      cards: context.cards,
      deadLetters: context.deadLetters,
    });
    const deadline = Date.now() + 30_000;
    while ((await decisionStreamLength(context.redis, context.keys)) < summary.sent) {
      if (Date.now() > deadline) throw new Error('events not decided in time');
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await chromium.launch({ executablePath: chromiumBinary.path, args: FLAGS, timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
    if (service) await stopTestService(service);
  });

  it('answers 401 without credentials or with wrong ones', async () => {
    const page = await browser.newPage();
    try {
      const res = await page.request.get(dashboard);
      expect(res.status()).toBe(401);
      expect(res.headers()['www-authenticate']).toBe('Basic realm="riskmon queue dashboard"');
      // Headless Chromium cannot ask for a login, so its navigation ends on the unanswered challenge.
      await expect(page.goto(dashboard)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    } finally {
      await page.close();
    }
    const wrong = await browser.newContext({ httpCredentials: { username: TEST_LOGIN.user, password: 'not-the-password' } });
    try {
      const page = await wrong.newPage();
      const res = await page.goto(dashboard);
      expect(res?.status()).toBe(401);
      expect(await page.locator('body').innerText()).toBe('Unauthorized');
    } finally {
      await wrong.close();
    }
  });

  it('lists every queue after logging in, shows masked cards only, and saves a screenshot', async () => {
    const context = await browser.newContext({ httpCredentials: { username: TEST_LOGIN.user, password: TEST_LOGIN.password }, viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    try {
      const response = await page.goto(dashboard);
      expect(response?.status()).toBe(200);
      const names = [...Array.from({ length: service.context.settings.config.pipeline.shards }, (_, s) => `risk-${s}`), 'settlement', 'calibration'];
      // Every queue has its card on the overview (the sidebar lists them too).
      await page.waitForFunction((want) => want.every((n) => document.body.innerText.split('\n').includes(n)), names, { timeout: 15_000 });
      for (const name of names) expect(await page.locator(`a[href="/admin/queues/queue/${name}"]`).count(), name).toBeGreaterThan(0);
      await page.waitForLoadState('networkidle');
      mkdirSync(`${ROOT}test-results`, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      if (!existsSync(DOCS_SCREENSHOT) || process.env.RISKMON_UPDATE_SCREENSHOTS === '1') copyFileSync(SCREENSHOT, DOCS_SCREENSHOT);

      // A queue's completed jobs with their payloads: card numbers appear only as their last four.
      await page.goto(`${dashboard}/queue/risk-0?status=completed`);
      await page.getByText('jobData:').first().waitFor({ timeout: 15_000 });
      await page.getByRole('button', { name: 'expand JSON' }).first().click();
      // The producer queues the card only as its keyed hash and last four.
      await page.getByText('cardLast4:').first().waitFor({ timeout: 5_000 });
      const text = await page.locator('body').innerText();
      expect(text).toMatch(/cardLast4:\s*"\*{4}\d{4}"/);
      expect(text).not.toMatch(/cardId:/);
      expect(text).not.toMatch(/6222\d{8,}/);
      await page.screenshot({ path: `${ROOT}test-results/queue-dashboard-jobs.png` });
      if (!existsSync(DOCS_JOBS_SCREENSHOT) || process.env.RISKMON_UPDATE_SCREENSHOTS === '1') {
        copyFileSync(`${ROOT}test-results/queue-dashboard-jobs.png`, DOCS_JOBS_SCREENSHOT);
      }
    } finally {
      await context.close();
    }
  });
});
