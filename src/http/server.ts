/**
 * The HTTP side of a service process (Hono on Node): `/metrics` for Prometheus, `/healthz` (the process is alive),
 * `/readyz` (Redis answers and the workers run, else 503 with the reason) and the queue dashboard under
 * `/admin/queues`, behind HTTP basic auth unless that is explicitly disabled for local use.
 */
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { Queue } from 'bullmq';
import { Hono } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { ConfigError, type DashboardCredentials, type RiskmonConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { DASHBOARD_PATH, queueDashboard } from './dashboard.ts';
import type { ReadinessReport } from './readiness.ts';

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

export function createHttpApp(options: HttpServerOptions): Hono {
  const { metrics, logger } = options;
  const app = new Hono();

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

  const { auth, readOnly } = options.http.dashboard;
  const isDashboard = (path: string) => path === DASHBOARD_PATH || path.startsWith(`${DASHBOARD_PATH}/`);
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
    const guard = basicAuth({ username: options.credentials!.user, password: options.credentials!.password, realm: 'riskmon queue dashboard' });
    app.use('*', async (c, next) => (isDashboard(c.req.path) ? guard(c, next) : next()));
  } else {
    logger.warn(`queue dashboard ${DASHBOARD_PATH} is open without a login (http.dashboard.auth "disabled")`);
  }
  app.route(DASHBOARD_PATH, queueDashboard({ queues: options.queues, readOnly, namespace: options.namespace }));
  return app;
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
