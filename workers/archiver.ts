/** The archiver alone: decisions and dead letters from Redis into PostgreSQL (DATABASE_URL) or the embedded archive. */
import { runUntilSignal } from '../src/service.ts';

await runUntilSignal({ components: ['archive'] });
