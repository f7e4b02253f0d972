/**
 * npm run calibrate -- --date YYYY-MM-DD [--namespace <name>] [--config <file>] [--concurrency N] [--timeout S]
 * Runs (or resumes, or repeats) calibration run D by hand: fans its accounts out as chunk jobs and works them in
 * this process (a running service's workers help), then prints the run's summary as JSON. Gives up waiting after
 * --timeout seconds, saying what is left (the run goes on with the service's workers, or resumes when started again).
 */
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { createLogger } from '../src/logger.ts';
import { startCalibrationWorkerFor } from '../src/quota/calibration-worker.ts';
import { CalibrationDateError } from '../src/quota/calibration.ts';
import type { RunStatus, RunWork } from '../src/quota/runs.ts';
import { progressDisplay, PROGRESS_NOTE } from '../src/progress.ts';

runCommand(
  {
    name: 'calibrate',
    summary: "Runs (or resumes, or repeats) the credit-quota calibration run of a date by hand: fans its accounts out as chunk jobs, works them in this process (a running service's workers help) and prints the run's summary as JSON.",
    usage: ['--date YYYY-MM-DD [options]'],
    options: {
      date: { type: 'string', arg: 'YYYY-MM-DD', help: 'the run date (a calibration day: the 1st or the 15th by default)' },
      concurrency: { type: 'string', arg: 'N', help: 'chunk jobs worked at once in this process (default: calibration.concurrency)' },
      timeout: { type: 'string', arg: 'S', help: 'seconds to wait for the run to finish before giving up, saying what is left (default 600)' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: [PROGRESS_NOTE],
    examples: ['npm run calibrate -- --date 2026-03-15 --namespace live'],
  },
  async ({ values }) => {
  if (!values.date) throw new UsageError('--date is required');
  const concurrency = values.concurrency === undefined ? undefined : wholeNumberOption('concurrency', values.concurrency, 1, { max: 64 });
  const timeoutSeconds = wholeNumberOption('timeout', values.timeout, 600, { min: 1, max: 7 * 86_400 });

  const cli = await openCliContext({
    namespace: namespaceOption(values.namespace),
    configFile: values.config,
    logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn' }),
    requireExisting: true,
  });
  const { context } = cli;
  try {
    try {
      context.calibrator.run(values.date);
    } catch (e) {
      if (e instanceof CalibrationDateError) throw new UsageError(e.message);
      throw e;
    }
    const worker = await startCalibrationWorkerFor(context, concurrency);
    try {
      const started = await context.calibration.start(values.date);
      process.stderr.write(`calibrate: run ${started.runId} (attempt ${started.attempts}): ${started.accounts} accounts in ${started.chunks} chunks\n`);
      const progress = progressDisplay({
        label: 'calibrate',
        total: started.accounts,
        counted: 'calibrated',
        fields: ['skipped', 'refused', 'chunks done', 'jobs waiting', 'jobs active'],
        start: started.calibrated,
      });
      const show = (s: RunStatus, w: RunWork) =>
        progress.update(s.calibrated, { skipped: s.skipped, refused: s.refused, 'chunks done': w.chunksDone, 'jobs waiting': w.waiting + w.delayed, 'jobs active': w.active });
      let done;
      try {
        done = await context.calibration.waitUntilDone(values.date, { pollMs: 200, timeoutMs: timeoutSeconds * 1000, onProgress: show });
        show(done, await context.calibration.work(values.date));
      } finally {
        progress.stop();
      }
      process.stdout.write(JSON.stringify(done, null, 2) + '\n');
    } finally {
      await worker.close();
    }
  } finally {
    await cli.close();
  }
});
