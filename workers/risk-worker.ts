/** Risk workers alone: consume the shard queues and decide. Run as many processes as you like. */
import { runUntilSignal } from '../src/service.ts';

await runUntilSignal({ components: ['risk'] });
