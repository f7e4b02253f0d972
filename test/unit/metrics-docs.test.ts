/** Every metric riskmon defines is documented in the README's metric table, and nothing documented is missing. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.ts';

describe('metric documentation', () => {
  it('lists exactly the metrics the registry has, with their types', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Metrics'));
    const documented = new Map([...section.matchAll(/^\| `(riskmon_[a-z_]+)` \| (counter|gauge|histogram)/gm)].map((m) => [m[1], m[2]]));
    const metrics = await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON();
    expect(new Map(metrics.map((m) => [m.name, String(m.type)]))).toEqual(documented);
  });

  // Failed before: the calibration runs' row named `completed` and `failed` but not `refused`.
  it("names every label value a metric starts with in the metric's row", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Metrics'));
    const rows = new Map([...section.matchAll(/^\| `(riskmon_[a-z_]+)` \|.*$/gm)].map((m) => [m[1], m[0]]));
    const missing: string[] = [];
    for (const metric of await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()) {
      for (const { labels } of metric.values) {
        for (const [label, value] of Object.entries(labels)) {
          if (label === 'le') continue; // histogram buckets
          if (!rows.get(metric.name)?.includes(`\`${value}\``)) missing.push(`${metric.name} ${label}=${value}`);
        }
      }
    }
    expect([...new Set(missing)]).toEqual([]);
  });
});
