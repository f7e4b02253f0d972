/** HTTP settings: config file, environment overrides, dashboard login, with clear messages. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, dashboardPasswordWeakness, isLoopbackHost, loadSettings, type LoadOptions } from '../../src/config.ts';

const secret = randomBytes(32).toString('base64');
const ARCHIVE_URL = 'postgres://riskmon@db.internal:5432/riskmon';
const PRODUCTION = { RISKMON_ENV: 'production', RISKMON_CARD_SECRET: secret, DATABASE_URL: ARCHIVE_URL };

/** The ConfigError message of a refused load; fails when the load succeeds or throws something else. */
function refusal(options: LoadOptions): string {
  try {
    loadSettings(options);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error(`not refused: ${JSON.stringify(options)}`);
}

describe('HTTP configuration', () => {
  it('defaults to loopback on 9464 with a read-only dashboard behind basic auth', () => {
    const { config, dashboardCredentials } = loadSettings({ env: {} });
    expect(config.http).toEqual({
      enabled: true,
      host: '127.0.0.1',
      port: 9464,
      dashboard: { auth: 'basic', readOnly: true, loginThrottle: { maxFailures: 10, windowSeconds: 300, globalMaxFailures: 100 } },
      api: { requestsPerMinute: 600, maxPageSize: 1000 },
    });
    expect(dashboardCredentials).toBeUndefined();
  });

  it('takes port, host, enabled and the login from the environment', () => {
    const s = loadSettings({
      env: {
        RISKMON_HTTP_PORT: '0',
        RISKMON_HTTP_HOST: '0.0.0.0',
        RISKMON_HTTP_ENABLED: 'false',
        RISKMON_DASHBOARD_USER: 'ops',
        RISKMON_DASHBOARD_PASSWORD: 'long-enough',
      },
    });
    expect(s.config.http).toMatchObject({ enabled: false, host: '0.0.0.0', port: 0 });
    expect(s.dashboardCredentials).toEqual({ user: 'ops', password: 'long-enough' });
    expect(loadSettings({ env: { RISKMON_HTTP_ENABLED: 'true' }, overrides: { http: { enabled: false } } }).config.http.enabled).toBe(false);
  });

  it.each([
    [{ RISKMON_HTTP_PORT: '80a' }, 'RISKMON_HTTP_PORT: expected a port number 0–65535 (0 = any free port), got "80a"'],
    [{ RISKMON_HTTP_PORT: '70000' }, 'RISKMON_HTTP_PORT: expected a port number'],
    [{ RISKMON_HTTP_ENABLED: 'nope' }, 'RISKMON_HTTP_ENABLED: expected true or false, got "nope"'],
    [{ RISKMON_DASHBOARD_USER: 'ops' }, 'set both RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD'],
    [{ RISKMON_DASHBOARD_PASSWORD: 'long-enough' }, 'set both RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD'],
    [{ RISKMON_DASHBOARD_USER: 'ops', RISKMON_DASHBOARD_PASSWORD: 'short' }, 'RISKMON_DASHBOARD_PASSWORD must be at least 8 characters'],
    [{ RISKMON_DASHBOARD_USER: 'o:ps', RISKMON_DASHBOARD_PASSWORD: 'long-enough' }, 'must not contain ":"'],
  ])('rejects %o', (env, message) => {
    expect(() => loadSettings({ env })).toThrow(ConfigError);
    expect(() => loadSettings({ env })).toThrow(message);
  });

  it.each([
    [{ http: { port: -1 } }, 'http.port'],
    [{ http: { port: 1.5 } }, 'http.port: expected a whole number'],
    [{ http: { dashboard: { auth: 'none' } } }, 'http.dashboard.auth: expected "basic" or "disabled"'],
    [{ http: { dashboard: { readOnly: 'yes' } } }, 'http.dashboard.readOnly'],
    [{ http: { extra: 1 } }, 'http'],
  ])('rejects the config %o', (overrides, message) => {
    expect(() => loadSettings({ env: {}, overrides })).toThrow(message);
  });

  it('refuses a dashboard without login in production', () => {
    expect(refusal({ env: PRODUCTION, overrides: { http: { dashboard: { auth: 'disabled' } } } })).toBe(
      'http.dashboard.auth "disabled" is for a developer\'s own machine: production requires "basic" (set it, and RISKMON_DASHBOARD_USER / RISKMON_DASHBOARD_PASSWORD)',
    );
    expect(loadSettings({ env: PRODUCTION }).config.http.dashboard.auth).toBe('basic');
  });

  it.each([
    [{ loginThrottle: { maxFailures: 0 } }, 'http.dashboard.loginThrottle.maxFailures'],
    [{ loginThrottle: { windowSeconds: 0.5 } }, 'http.dashboard.loginThrottle.windowSeconds'],
    [{ loginThrottle: { globalMaxFailures: -1 } }, 'http.dashboard.loginThrottle.globalMaxFailures'],
  ])('rejects the login throttle %o', (dashboard, message) => {
    expect(refusal({ env: {}, overrides: { http: { dashboard } } })).toContain(message);
  });
});

// Issue 11, finding 10: in development, auth "disabled" + host 0.0.0.0 + readOnly false started with only a warning.
describe('a dashboard without login', () => {
  const disabled = (host: string, extra: Record<string, unknown> = {}) => ({ http: { host, dashboard: { auth: 'disabled', readOnly: false }, ...extra } });

  it.each(['0.0.0.0', '::', '192.168.1.10', '10.0.0.5', 'fe80::1', '::ffff:10.0.0.1', 'riskmon.internal', '128.0.0.1'])(
    'is refused on %s in development too, naming both settings and what to do',
    (host) => {
      expect(refusal({ env: {}, overrides: disabled(host) })).toBe(
        `http.dashboard.auth "disabled" with http.host "${host}": the dashboard would be open without a login to every host that reaches this address, with the buttons that remove and add jobs. ` +
          'Listen on a loopback address (http.host "127.0.0.1", RISKMON_HTTP_HOST), or use http.dashboard.auth "basic" with RISKMON_DASHBOARD_USER / RISKMON_DASHBOARD_PASSWORD',
      );
    },
  );

  it('is refused when RISKMON_HTTP_HOST moves a loopback config to all interfaces', () => {
    expect(refusal({ env: { RISKMON_HTTP_HOST: '0.0.0.0' }, overrides: { http: { dashboard: { auth: 'disabled' } } } })).toMatch(
      /^http\.dashboard\.auth "disabled" with http\.host "0\.0\.0\.0"/,
    );
  });

  it.each(['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '0:0:0:0:0:0:0:1', '[::1]', '::ffff:127.0.0.1'])('is allowed on %s in development', (host) => {
    expect(loadSettings({ env: {}, overrides: disabled(host) }).config.http.host).toBe(host);
  });

  it('is allowed on any host when HTTP is off (nothing is served)', () => {
    expect(loadSettings({ env: {}, overrides: disabled('0.0.0.0', { enabled: false }) }).config.http.enabled).toBe(false);
  });

  it('classifies loopback addresses', () => {
    expect(['127.0.0.1', '127.255.255.254', 'localhost', 'localhost.', '::1', '[0::1]', '::ffff:127.9.9.9'].filter((h) => !isLoopbackHost(h))).toEqual([]);
    expect(['0.0.0.0', '::', '', '1.2.3.4', '::2', '::ffff:10.0.0.1', 'localhost.example.com', '127.0.0.1.nip.io'].filter(isLoopbackHost)).toEqual([]);
  });
});

// Issue 11, finding 10: production accepted the dashboard password "12345678". Each case loaded on main.
describe('production dashboard password', () => {
  const withLogin = (user: string, password: string) => ({ env: { ...PRODUCTION, RISKMON_DASHBOARD_USER: user, RISKMON_DASHBOARD_PASSWORD: password } });

  it.each([
    ['12345678', 'ops', /is 8 characters long, fewer than 12/],
    ['123456789012', 'ops', /is only digits/],
    ['１２３４５６７８９０１２', 'ops', /is only digits/],
    ['riskmon-demo', 'ops', /is a published value/],
    ['RISKMON-DEMO', 'ops', /is a published value/],
    ['aaaaaaaaaaaaaaaa', 'ops', /has fewer than 6 different characters/],
    ['abcabcabcabc', 'ops', /has fewer than 6 different characters/],
    ['operator-admin', 'operator-admin', /contains RISKMON_DASHBOARD_USER/],
    ['xx-Operator-2024', 'operator', /contains RISKMON_DASHBOARD_USER/],
    ['Password123!', 'ops', /is a common word with digits or symbols around it/],
    ['2024-changeme!', 'ops', /is a common word/],
  ])('refuses %s (user %s), naming the setting and what to do, without printing it', (password, user, reason) => {
    const message = refusal(withLogin(user, password));
    expect(message).toMatch(reason);
    expect(message).toMatch(/^RISKMON_DASHBOARD_PASSWORD .*: production refuses it \(generate one with `openssl rand -base64 18`\)$/);
    expect(message).not.toContain(password);
  });

  it('accepts generated passwords and a long passphrase', () => {
    // A user no base64 password can contain ("-"): with "ops", 1 run in 15 met one that held it, in any case.
    for (let i = 0; i < 100; i++) expect(dashboardPasswordWeakness({ user: 'ops-team', password: randomBytes(18).toString('base64') })).toBeUndefined();
    expect(loadSettings(withLogin('ops', 'tangerine-orbit-lantern-47')).dashboardCredentials).toEqual({ user: 'ops', password: 'tangerine-orbit-lantern-47' });
  });

  it('leaves development at its 8-character minimum', () => {
    expect(loadSettings({ env: { RISKMON_DASHBOARD_USER: 'ops', RISKMON_DASHBOARD_PASSWORD: '12345678' } }).dashboardCredentials?.password).toBe('12345678');
  });
});
