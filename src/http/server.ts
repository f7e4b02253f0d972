/**
 * The HTTP side of a service process (Hono on Node): `/metrics` for Prometheus, `/healthz` (the process is alive),
 * `/readyz` (Redis answers and the workers run, else 503 with the reason) and the queue dashboard under
 * `/admin/queues`, behind HTTP basic auth (failed logins throttled) unless that is explicitly disabled for local use
 * on a loopback address; the JSON API under `/api` with bearer tokens (src/api/routes.ts) and the review console
 * under `/console` (src/console/console.tsx).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import type { Queue } from 'bullmq';
import { Hono, type Context } from 'hono';
import { ConfigError, isLoopbackHost, type DashboardCredentials, type RiskmonConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { DASHBOARD_PATH, queueDashboard } from './dashboard.ts';
import { clientKey, LoginThrottle } from './login-throttle.ts';
import type { ReadinessReport } from './readiness.ts';
import { createApi, type ApiOptions } from '../api/routes.ts';
import { CONSOLE_PATH, createConsole } from '../console/console.tsx';

const REALM = 'riskmon queue dashboard';

export interface HttpServerOptions {
  http: RiskmonConfig['http'];
  credentials: DashboardCredentials | undefined;
  /** "production" refuses to serve the dashboard without credentials. */
  environment: RiskmonConfig['environment'];
  namespace: string;
  metrics: Metrics;
  /** Every queue of the namespace, for the dashboard. */
  queues: Queue[];
  readiness: () => Promise<ReadinessReport>;
  logger: Logger;
  /** The JSON API under /api (src/api/routes.ts) and the review console under /console; absent, neither is served. */
  api?: Omit<ApiOptions, 'http' | 'metrics' | 'logger'>;
  /** The calendar zone the console shows times in. */
  timezone: string;
}

export interface HttpServer {
  /** e.g. http://127.0.0.1:9464 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export class HttpStartError extends Error {
  override name = 'HttpStartError';
}

export function createHttpApp(options: HttpServerOptions): Hono<{ Bindings: HttpBindings }> {
  const { metrics, logger } = options;
  const app = new Hono<{ Bindings: HttpBindings }>();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    const report = await options.readiness();
    if (!report.ready) {
      const reason = Object.entries(report.checks)
        .filter(([, v]) => v !== 'ok')
        .map(([k, v]) => `${k}: ${v}`)
        .join('; ');
      return c.json({ status: 'not ready', reason, checks: report.checks }, 503);
    }
    return c.json({ status: 'ready', checks: report.checks });
  });

  app.get('/metrics', async (c) => {
    const body = await metrics.registry.metrics();
    return c.body(body, 200, { 'Content-Type': metrics.registry.contentType });
  });

  // The API has its own authentication (bearer tokens), before the dashboard's; the review console signs in with
  // the same tokens and asks the API for everything.
  if (options.api) {
    const api = createApi({ ...options.api, http: options.http, metrics, logger: logger.child({ component: 'api' }) });
    app.route('/api', api);
    app.route(CONSOLE_PATH, createConsole({ api, timezone: options.timezone, secureCookies: options.environment === 'production' }));
  }

  const { auth, readOnly, loginThrottle } = options.http.dashboard;
  const isDashboard = (path: string) => path === DASHBOARD_PATH || path.startsWith(`${DASHBOARD_PATH}/`);
  // loadSettings refuses this too; checked again for anyone who builds the options by hand.
  if (auth === 'disabled' && !isLoopbackHost(options.http.host)) {
    throw new ConfigError(`http.dashboard.auth "disabled" needs a loopback http.host (127.0.0.1, ::1, localhost), not "${options.http.host}"`);
  }
  if (auth === 'disabled' && options.environment === 'production') {
    throw new ConfigError('http.dashboard.auth "disabled" is refused in production: use "basic"');
  }
  if (auth === 'basic' && !options.credentials) {
    if (options.environment === 'production') {
      throw new ConfigError(
        'the queue dashboard needs a login in production: set RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD',
      );
    }
    logger.warn(`queue dashboard off: set RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD to open ${DASHBOARD_PATH}`);
    app.all('*', async (c, next) => {
      if (!isDashboard(c.req.path)) return next();
      return c.text(
        'The queue dashboard has no login configured: set RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD ' +
          '(or http.dashboard.auth "disabled" on your own machine) and restart.\n',
        503,
      );
    });
    return app;
  }
  if (auth === 'basic') {
    const matches = credentialsMatcher(options.credentials!);
    const throttle = new LoginThrottle({
      maxFailures: loginThrottle.maxFailures,
      windowMs: loginThrottle.windowSeconds * 1_000,
      globalMaxFailures: loginThrottle.globalMaxFailures,
    });
    app.use('*', async (c, next) => {
      if (!isDashboard(c.req.path)) return next();
      const client = clientKey(c.env?.incoming?.socket?.remoteAddress);
      const waitMs = throttle.retryAfterMs(client);
      if (waitMs > 0) {
        metrics.loginThrottled.inc();
        const seconds = Math.max(1, Math.ceil(waitMs / 1_000));
        return c.text(`Too many failed logins: try again in ${seconds} s.\n`, 429, { 'Retry-After': String(seconds) });
      }
      const given = parseBasicAuth(c.req.header('authorization'));
      if (given && matches(given)) {
        throttle.succeeded(client);
        return next();
      }
      if (given) {
        metrics.loginFailures.inc();
        const { clientBlocked, globalBlocked } = throttle.failed(client);
        if (clientBlocked) logger.warn({ client, failures: loginThrottle.maxFailures, windowSeconds: loginThrottle.windowSeconds }, 'queue dashboard: too many failed logins from one client; refusing it until its window ends');
        if (globalBlocked) logger.warn({ failures: loginThrottle.globalMaxFailures, windowSeconds: loginThrottle.windowSeconds }, 'queue dashboard: too many failed logins from all clients; refusing every login until the window ends');
      }
      return unauthorized(c);
    });
  } else {
    logger.warn(`queue dashboard ${DASHBOARD_PATH} is open without a login (http.dashboard.auth "disabled")`);
  }
  app.route(DASHBOARD_PATH, queueDashboard({ queues: options.queues, readOnly, namespace: options.namespace }));
  return app;
}

function unauthorized(c: Context): Response {
  return c.text('Unauthorized', 401, { 'WWW-Authenticate': `Basic realm="${REALM}"` });
}

/** The user and password of an `Authorization: Basic …` header, or undefined when there is none or it is malformed. */
export function parseBasicAuth(header: string | undefined): DashboardCredentials | undefined {
  const m = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Compares in constant time: both sides are SHA-256 digests of equal length compared with timingSafeEqual, and the
 * user and the password are both compared whatever the first result, so the answer time says nothing about which
 * part, or how much of it, was right.
 */
function credentialsMatcher(expected: DashboardCredentials): (given: DashboardCredentials) => boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  const user = digest(expected.user);
  const password = digest(expected.password);
  return (given) => {
    const userOk = timingSafeEqual(digest(given.user), user);
    const passwordOk = timingSafeEqual(digest(given.password), password);
    return userOk && passwordOk;
  };
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = createHttpApp(options);
  const { host, port } = options.http;
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        new HttpStartError(
          e.code === 'EADDRINUSE'
            ? `cannot serve HTTP on ${host}:${port}: the port is in use (set RISKMON_HTTP_PORT, 0 = any free port, or RISKMON_HTTP_ENABLED=false)`
            : `cannot serve HTTP on ${host}:${port}: ${e.message}`,
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  options.logger.info({ url, metrics: `${url}/metrics`, dashboard: `${url}${DASHBOARD_PATH}` }, 'HTTP server listening');
  return {
    url,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (Prometheus, a browser) must not hold shutdown up.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
