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

export const readYaml = <T = any>(path: string): T => parse(readFileSync(path, 'utf8')) as T;

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
