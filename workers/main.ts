/** `npm start`: the whole service in one process (risk workers, settlement, quota calibration and the archiver). */
import { runUntilSignal } from '../src/service.ts';

await runUntilSignal({ components: ['risk', 'settlement', 'calibration', 'archive'] });
