/** A real service process in the test process: workers plus the HTTP server on a free port, in a fresh namespace. */
import { loadSettings, type DashboardCredentials } from '../../src/config.ts';
import { silentLogger, type Logger } from '../../src/logger.ts';
import { startService, type Component, type Service } from '../../src/service.ts';
import { freshNamespace, redisUrl } from './context.ts';
import { archiveBacklog } from '../../src/archive/archiver.ts';

export const TEST_LOGIN: DashboardCredentials = { user: 'ops', password: 'test-password-1' };

export interface TestServiceOptions {
  components?: Component[];
  /** Config values merged over the defaults (the HTTP port is always 0). */
  overrides?: Record<string, unknown>;
  /** Dashboard login; `null` for none. @defaultValue TEST_LOGIN */
  login?: DashboardCredentials | null;
  redisUrl?: string;
  namespacePrefix?: string;
  /** @defaultValue silentLogger */
  logger?: Logger;
  /** Environment variables the settings are loaded with (DATABASE_URL, say), besides the login. */
  env?: NodeJS.ProcessEnv;
}

export async function startTestService(options: TestServiceOptions = {}): Promise<Service & { http: NonNullable<Service['http']> }> {
  const login = options.login === undefined ? TEST_LOGIN : options.login;
  const env: NodeJS.ProcessEnv = { ...options.env, ...(login ? { RISKMON_DASHBOARD_USER: login.user, RISKMON_DASHBOARD_PASSWORD: login.password } : {}) };
  const overrides = { ...options.overrides, http: { host: '127.0.0.1', ...(options.overrides?.http as object), port: 0 } };
  const settings = loadSettings({ namespace: freshNamespace(options.namespacePrefix), overrides, env });
  const service = await startService({
    components: options.components ?? ['risk', 'settlement'],
    settings,
    logger: options.logger ?? silentLogger,
    redisUrl: options.redisUrl ?? redisUrl(),
    http: true,
  });
  if (!service.http) throw new Error('HTTP server did not start');
  return service as Service & { http: NonNullable<Service['http']> };
}

/** Deletes every key of the service's namespace, then closes it. */
export async function stopTestService(service: Service): Promise<void> {
  const { redis, keys } = service.context;
  await service.close();
  const cleaner = redis.duplicate();
  try {
    let cursor = '0';
    do {
      const [next, found] = await cleaner.scan(cursor, 'MATCH', `${keys.base}:*`, 'COUNT', 1000);
      if (found.length) await cleaner.unlink(...found);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    cleaner.disconnect();
  }
}

export function basic(login: DashboardCredentials): string {
  return `Basic ${Buffer.from(`${login.user}:${login.password}`).toString('base64')}`;
}

/** Waits until the service's archive holds every stream entry of its namespace (or fails after `timeoutMs`). */
export async function archiveCaughtUp(service: Service, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await archiveBacklog(service.context.redis, service.context.keys)).every((b) => b.entries === 0)) {
    if (Date.now() > deadline) throw new Error('the archive did not catch up');
    await new Promise((r) => setTimeout(r, 100));
  }
}
