/** `npm start`: the whole service in one process (risk workers and settlement). */
import { runUntilSignal } from '../src/service.ts';

await runUntilSignal({ components: ['risk', 'settlement'] });
