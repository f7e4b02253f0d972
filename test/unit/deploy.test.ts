/**
 * docker-compose.yml, Prometheus and Grafana files checked without Docker: they parse, every mounted file exists,
 * and service names, ports, paths and the datasource uid agree with each other. Alert rules go through promtool.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { program } from '../helpers/binaries.ts';
import { ALERT_RULES, ALERT_TESTS, DATASOURCES, dashboardPanels, dashboardQueries, PROMETHEUS_CONFIG, readYaml, ROOT } from '../helpers/deploy.ts';

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
function publishedContainerPort(service: ComposeService): number {
  const [, container] = service.ports![0]!.split(':');
  return Number(container);
}
/** Value of a "${VAR:-default}" string as compose would expand it with VAR unset. */
const expand = (v: string) => v.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');

describe('docker-compose.yml', () => {
  it('has the whole stack', () => {
    expect(Object.keys(services).sort()).toEqual(['grafana', 'producer', 'prometheus', 'redis', 'riskmon']);
  });

  it('runs Redis with AOF on and noeviction', () => {
    const cmd = services.redis!.command!.join(' ');
    expect(cmd).toMatch(/--appendonly yes\b/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction\b/);
    expect(cmd).toMatch(/--maxmemory \d+[kmg]b\b/);
    expect(services.redis!.volumes).toContain('redis-data:/data');
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

  it('points the service and the producer at the redis service, in the same namespace', () => {
    for (const name of ['riskmon', 'producer']) {
      const env = services[name]!.environment!;
      const url = new URL(env.REDIS_URL!);
      expect(url.hostname).toBe('redis');
      expect(url.port).toBe(services.redis!.ports![0]!.split(':')[1]);
      expect(env.RISKMON_NAMESPACE).toBe('live');
      expect(expand(env.RISKMON_CARD_SECRET!)).toBe(expand(services.riskmon!.environment!.RISKMON_CARD_SECRET!));
    }
    expect(services.producer!.command).toEqual(expect.arrayContaining(['scripts/produce.ts', '--synthetic', '--rate']));
    expect(existsSync(`${ROOT}scripts/produce.ts`)).toBe(true);
  });

  it('serves riskmon HTTP on the port Prometheus scrapes, with a dashboard login', () => {
    const env = services.riskmon!.environment!;
    expect(env.RISKMON_HTTP_HOST).toBe('0.0.0.0');
    const port = Number(env.RISKMON_HTTP_PORT);
    expect(publishedContainerPort(services.riskmon!)).toBe(port);
    expect(readFileSync(`${ROOT}Dockerfile`, 'utf8')).toContain(`EXPOSE ${port}`);
    expect(expand(env.RISKMON_DASHBOARD_USER!)).not.toBe('');
    expect(expand(env.RISKMON_DASHBOARD_PASSWORD!).length).toBeGreaterThanOrEqual(8);

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
    expect(rules.stdout).toMatch(/SUCCESS: 8 rules found/);
    const config = run('check', 'config', PROMETHEUS_CONFIG);
    expect(config.status, config.stdout + config.stderr).toBe(0);
  });

  it.skipIf(!promtool.available)('pass their unit tests (promtool test rules), which cover every alert', () => {
    const result = run('test', 'rules', ALERT_TESTS);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    const tests = readFileSync(ALERT_TESTS, 'utf8');
    const alerts = [...readFileSync(ALERT_RULES, 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    expect(alerts).toHaveLength(8);
    for (const alert of alerts) expect(tests, `${alert} is tested`).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
  });
});
