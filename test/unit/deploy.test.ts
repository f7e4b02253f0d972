/**
 * docker-compose.yml, Prometheus and Grafana files checked without Docker: they parse, every mounted file exists,
 * and service names, ports, paths and the datasource uid agree with each other. Alert rules go through promtool.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { redisTargetFromEnv } from '../../src/redis/target.ts';
import { program } from '../helpers/binaries.ts';
import {
  ALERT_RULES,
  ALERT_TESTS,
  composeVariables,
  DATASOURCES,
  dashboardPanels,
  documentedAlerts,
  dashboardQueries,
  interpolate,
  PROMETHEUS_CONFIG,
  readEnvFile,
  readYaml,
  ROOT,
} from '../helpers/deploy.ts';

interface ComposeService {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
}
const compose = readYaml<{ services: Record<string, ComposeService>; volumes: Record<string, unknown> }>(`${ROOT}docker-compose.yml`);
const services = compose.services;

/** Bind mounts of a service: host path (relative to the repo) → container path. */
function mounts(service: ComposeService): { host: string; container: string }[] {
  return (service.volumes ?? [])
    .filter((v) => v.startsWith('./'))
    .map((v) => {
      const [host, container] = v.split(':');
      return { host: host!, container: container! };
    });
}
/** "[host_ip:]host_port:container_port" → container_port. */
function publishedContainerPort(service: ComposeService): number {
  return Number(service.ports![0]!.split(':').at(-1));
}
/** A .env as an operator fills it from .env.example: generated values. */
const filledEnv = {
  RISKMON_CARD_SECRET: randomBytes(32).toString('base64'),
  RISKMON_DASHBOARD_USER: 'ops-team',
  RISKMON_DASHBOARD_PASSWORD: randomBytes(18).toString('base64'),
  REDIS_PASSWORD: randomBytes(32).toString('hex'),
  POSTGRES_PASSWORD: randomBytes(32).toString('hex'),
  GRAFANA_ADMIN_PASSWORD: randomBytes(18).toString('base64'),
};
/** A service's environment as compose gives it with this .env. */
const envOf = (name: string, vars: Record<string, string> = filledEnv) =>
  Object.fromEntries(Object.entries(services[name]!.environment!).map(([k, v]) => [k, interpolate(v, vars)]));
const SECRET_VARIABLES = ['RISKMON_CARD_SECRET', 'RISKMON_DASHBOARD_USER', 'RISKMON_DASHBOARD_PASSWORD', 'REDIS_PASSWORD', 'POSTGRES_PASSWORD', 'GRAFANA_ADMIN_PASSWORD'];

describe('docker-compose.yml', () => {
  it('has the whole stack', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['grafana',
      'postgres', 'producer', 'prometheus', 'redis', 'redis-c1', 'redis-c2', 'redis-c3', 'redis-c4', 'redis-c5', 'redis-c6', 'redis-cluster-init', 'riskmon', 'riskmon-cluster'].sort(),
    );
  });

  it('has a cluster profile: six cluster-enabled nodes as safe as the single Redis, joined 3 + 3, and riskmon pointed at them', () => {
    const nodes = ['redis-c1', 'redis-c2', 'redis-c3', 'redis-c4', 'redis-c5', 'redis-c6'];
    for (const name of [...nodes, 'redis-cluster-init', 'riskmon-cluster']) expect((services[name] as { profiles?: string[] }).profiles, name).toEqual(['cluster']);
    for (const name of nodes) {
      const node = services[name]!;
      const cmd = node.command!.map((a) => interpolate(a, filledEnv)).join(' ');
      expect(node.image).toBe(services.redis!.image);
      expect(cmd, name).toMatch(/--cluster-enabled yes\b/);
      expect(cmd, name).toContain(`--cluster-announce-hostname ${name} --cluster-preferred-endpoint-type hostname`);
      expect(cmd, name).toMatch(/--appendonly yes\b/);
      expect(cmd, name).toMatch(/--maxmemory-policy noeviction\b/);
      expect(cmd, name).toContain(`--requirepass ${filledEnv.REDIS_PASSWORD}`);
      // Replicas authenticate to their masters with the same password (a promoted replica is then a master alike).
      expect(cmd, name).toContain(`--masterauth ${filledEnv.REDIS_PASSWORD}`);
      expect(node.command!.slice(0, 2)).toEqual(['sh', '/usr/local/etc/riskmon/redis-start.sh']);
      expect(node.volumes).toContain(`${name}-data:/data`);
      expect(compose.volumes).toHaveProperty(`${name}-data`);
      expect(node.ports ?? []).toEqual([]);
      expect(envOf(name).REDISCLI_AUTH).toBe(filledEnv.REDIS_PASSWORD);
    }
    const init = services['redis-cluster-init']!.command!.join(' ');
    expect(init).toContain(`--cluster create ${nodes.map((n) => `${n}:6379`).join(' ')}`);
    expect(init).toContain('--cluster-replicas 1 --cluster-yes');
    expect(Object.keys(services['redis-cluster-init']!.depends_on as object).sort()).toEqual(nodes);
    const env = envOf('riskmon-cluster');
    expect(env.REDIS_URL).toBeUndefined();
    const target = redisTargetFromEnv(env);
    expect(target).toMatchObject({ kind: 'cluster', password: filledEnv.REDIS_PASSWORD, seeds: [{ host: 'redis-c1', port: 6379 }, { host: 'redis-c2', port: 6379 }, { host: 'redis-c3', port: 6379 }] });
    expect(env.RISKMON_NAMESPACE).toBe(envOf('riskmon').RISKMON_NAMESPACE);
    expect(env.RISKMON_ENV).toBe('production');
    expect(services['riskmon-cluster']!.ports).toEqual(['127.0.0.1:9465:9464']);
  });

  it('runs Redis with AOF on and noeviction', () => {
    const cmd = services.redis!.command!.join(' ');
    expect(cmd).toMatch(/--appendonly yes\b/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction\b/);
    expect(cmd).toMatch(/--maxmemory \d+[kmg]b\b/);
    expect(services.redis!.volumes).toContain('redis-data:/data');
    // Started through the AOF repair (docs/reliability.md, "Restart procedure"; test/chaos/aof-repair.test.ts).
    expect(services.redis!.command!.slice(0, 2)).toEqual(['sh', '/usr/local/etc/riskmon/redis-start.sh']);
    expect(services.redis!.volumes).toContain('./deploy/redis/start.sh:/usr/local/etc/riskmon/redis-start.sh:ro');
    expect(compose.volumes).toHaveProperty('redis-data');
  });

  it('mounts only files and folders that exist, and builds from a Dockerfile that copies existing folders', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const { host } of mounts(service)) expect(existsSync(`${ROOT}${host}`), `${name} mounts ${host}`).toBe(true);
      if (service.build) expect(existsSync(`${ROOT}${service.build}/Dockerfile`), `${name} builds ${service.build}`).toBe(true);
    }
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
    for (const [, src] of dockerfile.matchAll(/^COPY (\S+)/gm)) {
      for (const path of src!.split(' ')) expect(existsSync(`${ROOT}${path}`), `Dockerfile copies ${path}`).toBe(true);
    }
    expect(dockerfile).toMatch(/^CMD \["node", "--import", "tsx", "workers\/main\.ts"\]$/m);
    expect(existsSync(`${ROOT}workers/main.ts`)).toBe(true);
  });

  it('points the service and the producer at the redis service with its password, in the same namespace', () => {
    for (const name of ['riskmon', 'producer']) {
      const env = envOf(name);
      const url = new URL(env.REDIS_URL!);
      expect(url.hostname).toBe('redis');
      expect(url.port).toBe('6379');
      expect(decodeURIComponent(url.password)).toBe(filledEnv.REDIS_PASSWORD);
      expect(env.RISKMON_NAMESPACE).toBe('live');
      expect(env.RISKMON_CARD_SECRET).toBe(filledEnv.RISKMON_CARD_SECRET);
    }
    expect(services.producer!.command).toEqual(expect.arrayContaining(['scripts/produce.ts', '--synthetic', '--rate']));
    expect(existsSync(`${ROOT}scripts/produce.ts`)).toBe(true);
  });

  it('serves riskmon HTTP on the port Prometheus scrapes, with the dashboard login from .env', () => {
    const env = envOf('riskmon');
    expect(env.RISKMON_HTTP_HOST).toBe('0.0.0.0');
    const port = Number(env.RISKMON_HTTP_PORT);
    expect(publishedContainerPort(services.riskmon!)).toBe(port);
    expect(readFileSync(`${ROOT}Dockerfile`, 'utf8')).toContain(`EXPOSE ${port}`);
    expect(env.RISKMON_DASHBOARD_USER).toBe(filledEnv.RISKMON_DASHBOARD_USER);
    expect(env.RISKMON_DASHBOARD_PASSWORD).toBe(filledEnv.RISKMON_DASHBOARD_PASSWORD);

    const prometheus = readYaml<{ scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[] }>(PROMETHEUS_CONFIG);
    const job = prometheus.scrape_configs.find((j) => j.job_name === 'riskmon')!;
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs.flatMap((s) => s.targets)).toEqual([`riskmon:${port}`]);
  });

  it('gives Prometheus its config and every rule file at the paths the config names', () => {
    const prom = services.prometheus!;
    const configPath = prom.command!.find((a) => a.startsWith('--config.file='))!.split('=')[1]!;
    const byContainer = new Map(mounts(prom).map((m) => [m.container, m.host]));
    expect(byContainer.get(configPath)).toBe('./deploy/prometheus/prometheus.yml');
    const config = readYaml<{ rule_files: string[] }>(PROMETHEUS_CONFIG);
    expect(config.rule_files.length).toBeGreaterThan(0);
    for (const rules of config.rule_files) {
      const inContainer = posix.resolve(posix.dirname(configPath), rules);
      const host = byContainer.get(inContainer);
      expect(host, `rule file ${inContainer} is mounted`).toBeDefined();
      expect(`${ROOT}${host}`).toBe(`${ROOT}./deploy/prometheus/${rules}`);
    }
    expect(publishedContainerPort(prom)).toBe(9090);
  });

  it('provisions Grafana with the Prometheus service as datasource and the dashboard folder it mounts', () => {
    const grafana = services.grafana!;
    const byContainer = new Map(mounts(grafana).map((m) => [m.container, m.host]));
    expect(byContainer.get('/etc/grafana/provisioning')).toBe('./deploy/grafana/provisioning');
    const { datasources } = readYaml<{ datasources: { uid: string; type: string; url: string }[] }>(DATASOURCES);
    expect(datasources).toHaveLength(1);
    const ds = datasources[0]!;
    expect(ds.type).toBe('prometheus');
    const url = new URL(ds.url);
    expect(url.hostname).toBe('prometheus');
    expect(Number(url.port)).toBe(publishedContainerPort(services.prometheus!));

    const providers = readYaml<{ providers: { options: { path: string } }[] }>(`${ROOT}deploy/grafana/provisioning/dashboards/riskmon.yml`).providers;
    const dashboardsDir = providers[0]!.options.path;
    const hostDir = byContainer.get(dashboardsDir);
    expect(hostDir).toBe('./deploy/grafana/dashboards');
    expect(statSync(`${ROOT}${hostDir}`).isDirectory()).toBe(true);
    const home = grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(home.startsWith(`${dashboardsDir}/`)).toBe(true);
    expect(existsSync(`${ROOT}${hostDir}/${posix.basename(home)}`)).toBe(true);
    expect(publishedContainerPort(grafana)).toBe(3000);
  });
});

// Issue 11, finding 10: compose published Redis without a password, kept Grafana's admin/admin, ran riskmon as
// development and gave every secret a published fallback. Each test here failed on main before the fix.
describe('docker-compose.yml secrets and exposure', () => {
  it('does not publish Redis, and Redis requires the password from .env, health check included', () => {
    const redis = services.redis!;
    expect(redis.ports ?? []).toEqual([]);
    const command = redis.command!.map((a) => interpolate(a, filledEnv));
    expect(command[command.indexOf('--requirepass') + 1]).toBe(filledEnv.REDIS_PASSWORD);
    // redis-cli reads REDISCLI_AUTH: the health check authenticates, and fails on NOAUTH instead of passing.
    expect(envOf('redis').REDISCLI_AUTH).toBe(filledEnv.REDIS_PASSWORD);
    const health = (redis as { healthcheck?: { test: string[] } }).healthcheck!.test;
    expect(health.join(' ')).toMatch(/redis-cli ping \| grep -q PONG/);
  });

  it('publishes the other ports on the host loopback only', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('runs riskmon and the producer in production mode, and the demo feed only when asked for', () => {
    expect(services.riskmon!.environment!.RISKMON_ENV).toBe('production');
    expect(services.producer!.environment!.RISKMON_ENV).toBe('production');
    expect((services.producer as { profiles?: string[] }).profiles).toEqual(['demo']);
    expect(readFileSync(`${ROOT}Dockerfile`, 'utf8')).toMatch(/^ENV NODE_ENV=production$/m);
  });

  it('takes every secret from .env with no fallback, and stops with a message naming the one that is missing', () => {
    const used = composeVariables(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'));
    expect([...used.keys()].sort()).toEqual([...SECRET_VARIABLES].sort());
    for (const [variable, forms] of used) expect([...forms], variable).toEqual([':?']);
    for (const variable of SECRET_VARIABLES) {
      const without = { ...filledEnv, [variable]: '' } as Record<string, string>;
      const services_ = Object.keys(services).filter((name) => JSON.stringify(services[name]).includes(`\${${variable}:?`));
      expect(services_.length, variable).toBeGreaterThan(0);
      for (const name of services_) {
        const everything = () => [...Object.values(services[name]!.environment ?? {}), ...(services[name]!.command ?? [])].map((v) => interpolate(v, without));
        expect(everything, `${name} without ${variable}`).toThrow(new RegExp(`^set ${variable} in \\.env \\(see \\.env\\.example`));
      }
    }
  });

  it('gives Grafana its admin password from .env (no admin/admin)', () => {
    const env = envOf('grafana');
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toBe(filledEnv.GRAFANA_ADMIN_PASSWORD);
    expect(env.GF_SECURITY_ADMIN_PASSWORD).not.toBe('admin');
    expect(env.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
  });

  it('starts riskmon with a filled .env the way the image runs it (NODE_ENV=production), and refuses published or weak values', () => {
    const asImage = (vars: Record<string, string>) => ({ NODE_ENV: 'production', ...envOf('riskmon', vars) });
    const settings = loadSettings({ env: asImage(filledEnv) });
    expect(settings.config.environment).toBe('production');
    expect(settings.config.http.host).toBe('0.0.0.0');
    expect(settings.dashboardCredentials).toEqual({ user: filledEnv.RISKMON_DASHBOARD_USER, password: filledEnv.RISKMON_DASHBOARD_PASSWORD });
    // The values compose used to fall back to, put into .env by hand, are refused at start.
    expect(() => loadSettings({ env: asImage({ ...filledEnv, RISKMON_CARD_SECRET: 'riskmon-compose-demo-secret-change-me' }) })).toThrow(/RISKMON_CARD_SECRET is a published value/);
    expect(() => loadSettings({ env: asImage({ ...filledEnv, RISKMON_DASHBOARD_PASSWORD: 'riskmon-demo' }) })).toThrow(/RISKMON_DASHBOARD_PASSWORD is a published value/);
  });

  it('has a .env.example that names every variable compose needs, with how to generate it and no usable value', () => {
    const example = readFileSync(`${ROOT}.env.example`, 'utf8');
    const entries = readEnvFile(example);
    expect([...entries.keys()].sort()).toEqual([...SECRET_VARIABLES].sort());
    for (const [key, value] of entries) expect(value, `${key} in .env.example`).toBe('');
    // A copy of the example does not start: every variable is empty, and compose's ":?" refuses an empty value too.
    expect(() => interpolate(services.riskmon!.environment!.RISKMON_CARD_SECRET!, Object.fromEntries(entries))).toThrow(/set RISKMON_CARD_SECRET/);
    expect(example).toContain('openssl rand -base64 32');
    expect(example).toContain('openssl rand -hex 32');
    expect(readFileSync(`${ROOT}.gitignore`, 'utf8').split('\n')).toContain('.env');
    expect(readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n')).toContain('.env');
  });

  it('keeps secrets out of the image', () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
    expect(dockerfile).not.toMatch(/^(ENV|ARG)\b.*(SECRET|PASSWORD)/im);
    expect(dockerfile).not.toMatch(/^COPY \.env/m);
  });
});

describe('compose interpolation (the helper the tests above rely on)', () => {
  it('expands like compose: plain, :- and - defaults, :? and ? errors, $$', () => {
    expect(interpolate('a${X}b', { X: '1' })).toBe('a1b');
    expect(interpolate('${X:-d}', {})).toBe('d');
    expect(interpolate('${X:-d}', { X: '' })).toBe('d');
    expect(interpolate('${X-d}', { X: '' })).toBe('');
    expect(interpolate('$$X', {})).toBe('$X');
    expect(() => interpolate('${X:?need X}', { X: '' })).toThrow('need X');
    expect(interpolate('${X?need X}', { X: '' })).toBe('');
    expect(() => interpolate('${X?need X}', {})).toThrow('need X');
    expect(interpolate('${X}', {})).toBe('');
    expect([...composeVariables('a: ${A:?m}\nb: ${B:-x} ${A:?n} $${C}').entries()]).toEqual([
      ['A', new Set([':?'])],
      ['B', new Set([':-'])],
    ]);
  });
});

describe('Grafana dashboard', () => {
  const { datasources } = readYaml<{ datasources: { uid: string }[] }>(DATASOURCES);

  it('queries only the provisioned datasource', () => {
    for (const panel of dashboardPanels().filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe(datasources[0]!.uid);
      for (const t of panel.targets ?? []) expect(t.datasource?.uid ?? panel.datasource?.uid).toBe(datasources[0]!.uid);
    }
  });

  it('has the panels the operators need, each with queries and unique ids', () => {
    const panels = dashboardPanels();
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const titles = panels.map((p) => p.title).join(' | ');
    for (const want of ['Events consumed', 'Decisions by outcome', 'Rule hits', 'Decision latency p50 / p99', 'Queue depth', 'Oldest waiting job age', 'Held settlements', 'Accounts calibrated', 'Redis memory']) {
      expect(titles).toContain(want);
    }
    for (const p of panels.filter((p) => p.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size).toBe(p.targets!.length);
    }
    // Only variables Grafana itself provides (the Prometheus test expands them the same way).
    for (const q of dashboardQueries()) expect(q.expr.replace(/\$__(rate_interval|range)\b/g, '')).not.toContain('$');
  });
});

describe('alert rules (promtool)', () => {
  const promtool = program('/usr/bin/promtool', 'prometheus');
  const run = (...args: string[]) => spawnSync(promtool.path, args, { encoding: 'utf8', cwd: ROOT });

  it.skipIf(!promtool.available)('pass promtool check rules and check config', () => {
    const rules = run('check', 'rules', ALERT_RULES);
    expect(rules.status, rules.stdout + rules.stderr).toBe(0);
    expect(rules.stdout).toContain(`SUCCESS: ${documentedAlerts().length} rules found`);
    const config = run('check', 'config', PROMETHEUS_CONFIG);
    expect(config.status, config.stdout + config.stderr).toBe(0);
  });

  it.skipIf(!promtool.available)('pass their unit tests (promtool test rules), which cover every alert', () => {
    const result = run('test', 'rules', ALERT_TESTS);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    const tests = readFileSync(ALERT_TESTS, 'utf8');
    const alerts = [...readFileSync(ALERT_RULES, 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    expect(alerts, 'the README alert table lists every alert').toEqual(documentedAlerts());
    for (const alert of alerts) expect(tests, `${alert} is tested`).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
  });
});
