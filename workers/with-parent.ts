/**
 * Not an entry point: preloaded (`--import`) into every worker process that src/pipeline/worker-processes.ts
 * starts, so that none outlives the replay or bench that started it (see stopWithParent).
 */
import { stopWithParent } from '../src/pipeline/worker-processes.ts';

stopWithParent();
