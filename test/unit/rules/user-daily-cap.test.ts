/** user_daily_cap's configuration as its script reads it. */
import { describe, expect, it } from 'vitest';
import { userDailyCap } from '../../../src/rules/user-daily-cap.ts';
import { testScriptEnv } from '../../helpers/charges.ts';

describe('user_daily_cap', () => {
  it('gives its script the cap', () => {
    expect(userDailyCap.scriptConfig!(userDailyCap.config.parse({ capFen: 123 }), userDailyCap.config.parse(userDailyCap.defaults), testScriptEnv())).toEqual({ capFen: 123 });
  });
});
