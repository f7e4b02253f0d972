/** Quota calibration alone: the semi-monthly scheduler and the chunk worker. Run as many processes as you like. */
import { runUntilSignal } from '../src/service.ts';

await runUntilSignal({ components: ['calibration'] });
