/**
 * Child process of test/integration/worker-processes.test.ts: starts risk worker processes as a replay does, prints
 * their pids as one JSON line, and waits to be killed.
 * Run as: node --import tsx worker-parent.ts <count>   (REDIS_URL, RISKMON_NAMESPACE, RISKMON_CARD_SECRET set)
 */
import { RISK_WORKER_ENTRY, startProcesses } from '../../src/pipeline/worker-processes.ts';

const children = startProcesses(RISK_WORKER_ENTRY, Number(process.argv[2] ?? 1), { LOG_LEVEL: 'info' });
process.stdout.write(JSON.stringify({ pids: children.pids }) + '\n');
setInterval(() => undefined, 60_000);
