/** The deploy/ files and docker-compose.yml, parsed, for the tests that check them against each other and real programs. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROMETHEUS_CONFIG = `${ROOT}deploy/prometheus/prometheus.yml`;
export const ALERT_RULES = `${ROOT}deploy/prometheus/alerts.yml`;
export const ALERT_TESTS = `${ROOT}deploy/prometheus/alerts.test.yml`;
export const DASHBOARD = `${ROOT}deploy/grafana/dashboards/riskmon.json`;
export const DATASOURCES = `${ROOT}deploy/grafana/provisioning/datasources/prometheus.yml`;

// Merge keys on: docker-compose.yml gives the six cluster nodes one definition (`<<: *cluster-node`), as compose reads it.
export const readYaml = <T = any>(path: string): T => parse(readFileSync(path, 'utf8'), { merge: true }) as T;

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
  panels?: DashboardPanel[];
}

export function dashboardPanels(): DashboardPanel[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: DashboardPanel[] };
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every query of the dashboard with the panel it belongs to. */
export function dashboardQueries(): { panel: string; refId: string; expr: string }[] {
  return dashboardPanels().flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr })));
}

/** Grafana's built-in variables replaced the way Grafana does before it sends a query. */
export function grafanaExpand(expr: string, vars: { rateInterval: string; range: string }): string {
  return expr.replaceAll('$__rate_interval', vars.rateInterval).replaceAll('$__range', vars.range);
}

/**
 * A compose value with `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}` and `$$`
 * expanded the way docker compose does (":" = unset or empty; "?" stops with the message). No Docker engine here,
 * so this is how the tests read what compose would run.
 */
export function interpolate(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (whole, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (whole === '$$') return '$';
    const v = vars[name!];
    const missing = op?.startsWith(':') ? v === undefined || v === '' : v === undefined;
    if (op === undefined) return v ?? '';
    if (!missing) return v!;
    if (op.endsWith('?')) throw new Error(arg || `required variable ${name} is missing a value`);
    return arg ?? '';
  });
}

/** Every variable a compose file interpolates, with the forms used (":?", ":-", "?", "-" or "" for plain). */
export function composeVariables(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of text.replaceAll('$$', '').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?/g)) {
    if (!out.has(m[1]!)) out.set(m[1]!, new Set());
    out.get(m[1]!)!.add(m[2] ?? '');
  }
  return out;
}

/** KEY=value lines of a .env file (comments and blank lines skipped). */
export function readEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** The alerts the README's alert table documents, in its order. */
export function documentedAlerts(): string[] {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('### Alerts'), readme.indexOf('### Metrics'));
  return [...section.matchAll(/^\| `(Riskmon\w+)` \|/gm)].map((m) => m[1]!);
}
