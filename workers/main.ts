/** `npm start`: the whole service in one process (risk workers, settlement and quota calibration). */
import { runUntilSignal } from '../src/service.ts';

await runUntilSignal({ components: ['risk', 'settlement', 'calibration'] });
