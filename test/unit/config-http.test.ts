/** HTTP settings: config file, environment overrides, dashboard login, with clear messages. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadSettings } from '../../src/config.ts';

describe('HTTP configuration', () => {
  it('defaults to loopback on 9464 with a read-only dashboard behind basic auth', () => {
    const { config, dashboardCredentials } = loadSettings({ env: {} });
    expect(config.http).toEqual({ enabled: true, host: '127.0.0.1', port: 9464, dashboard: { auth: 'basic', readOnly: true } });
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
    const env = { RISKMON_ENV: 'production', RISKMON_CARD_SECRET: 'a-production-secret-of-some-length' };
    expect(() => loadSettings({ env, overrides: { http: { dashboard: { auth: 'disabled' } } } })).toThrow(
      'http.dashboard.auth "disabled" is for a developer\'s own machine: production requires "basic"',
    );
    expect(loadSettings({ env }).config.http.dashboard.auth).toBe('basic');
  });
});
