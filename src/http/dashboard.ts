/**
 * The queue dashboard (bull-board) over every queue of one namespace, mounted under a base path. Job payloads
 * carry raw events, so every payload and return value shown is scrubbed of card data first; the board is
 * read-only unless configured otherwise.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import type { Hono } from 'hono';
import { scrubCardData } from '../events/scrub.ts';

export const DASHBOARD_PATH = '/admin/queues';

export interface DashboardOptions {
  queues: Queue[];
  readOnly: boolean;
  namespace: string;
  /** @defaultValue DASHBOARD_PATH */
  basePath?: string;
}

export function queueDashboard(options: DashboardOptions): Hono {
  const basePath = options.basePath ?? DASHBOARD_PATH;
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(basePath);
  const adapters = options.queues.map((queue) => {
    const adapter = new BullMQAdapter(queue, {
      readOnlyMode: options.readOnly,
      allowRetries: !options.readOnly,
      description: describeQueue(queue.name),
    });
    adapter.setFormatter('data', scrubCardData);
    adapter.setFormatter('returnValue', scrubCardData);
    return adapter;
  });
  createBullBoard({
    queues: adapters,
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'riskmon',
        hideDocsLink: true,
        sortQueues: true,
        environment: {
          label: `namespace ${options.namespace}${options.readOnly ? ' · read-only' : ''}`,
          color: options.readOnly ? '#1f6f43' : '#9a3412',
          textColor: '#ffffff',
        },
      },
    },
  });
  return serverAdapter.registerPlugin();
}

function describeQueue(name: string): string {
  if (name.startsWith('risk-')) return `Risk shard ${name.slice(5)}: ordered micro-batches of events, one job at a time`;
  if (name === 'settlement') return 'Settlement release ticks (job scheduler)';
  return name;
}
