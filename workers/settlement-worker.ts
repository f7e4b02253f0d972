/** Settlement worker alone: releases due transactions into the Fenfu ledger. */
import { runUntilSignal } from '../src/service.ts';

await runUntilSignal({ components: ['settlement'] });
