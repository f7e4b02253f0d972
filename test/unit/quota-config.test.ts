/** The calibration configuration is validated at start with the path and the reason. */
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { Calibrator } from '../../src/quota/calibration.ts';
import { ZoneCalendar } from '../../src/time/calendar.ts';

const load = (overrides: unknown) => () => loadSettings({ overrides, env: {} });

describe('calibration config', () => {
  it('defaults to the issue numbers and the 1st/15th cron', () => {
    const { config } = loadSettings({ env: {} });
    expect(config.calibration.bands).toEqual({ invited: { minFen: 50_000, maxFen: 1_500_000 }, applied: { minFen: 30_000, maxFen: 800_000 } });
    expect(new Calibrator(config, new ZoneCalendar(config.timezone)).cron).toBe('0 0 1,15 * *');
  });

  it('rejects inconsistent values with their path', () => {
    expect(load({ calibration: { bands: { applied: { minFen: 900_000, maxFen: 800_000 } } } })).toThrow(/calibration\.bands\.applied: minFen must not exceed maxFen/);
    expect(load({ calibration: { runDays: [15, 1] } })).toThrow(/calibration\.runDays: runDays must be increasing/);
    expect(load({ calibration: { runDays: [31] } })).toThrow(/calibration\.runDays\.0/);
    expect(load({ calibration: { idle: { percent: 10 } } })).toThrow(/calibration\.idle\.percent/);
    expect(load({ calibration: { holidayUplifts: [{ name: 'x', from: '2026-10-08', to: '2026-09-28', percent: 20 }] } })).toThrow(
      /calibration\.holidayUplifts\.0: from must be before to/,
    );
    expect(load({ calibration: { holidayUplifts: [{ name: 'x', from: '2026-02-30', to: '2026-03-02', percent: 20 }] } })).toThrow(/not a calendar date/);
    expect(load({ retention: { dayTotalsDays: 8 } })).toThrow(/retention\.dayTotalsDays: must be more than events\.maxAgeDays \+ 1/);
  });
});
