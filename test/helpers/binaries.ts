/**
 * Tests that need a system program (prometheus, promtool, chromium). On a developer's machine without it they are
 * skipped with a message saying what to install; in CI (CI=true) a missing program is a failing test, because
 * .ci/run installs it.
 */
import { accessSync, constants } from 'node:fs';
import { it } from 'vitest';

export interface Program {
  path: string;
  available: boolean;
  /** True when the tests using it should be skipped (missing, and not in CI). */
  skip: boolean;
}

export function program(path: string, debianPackage: string): Program {
  let available = true;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    available = false;
  }
  const message = `${path} not found: install it (Debian/Ubuntu: apt-get install -y ${debianPackage})`;
  if (!available) {
    if (process.env.CI === 'true') {
      it(`needs ${path} (CI installs the "${debianPackage}" package)`, () => {
        throw new Error(`${message}; .ci/run should have installed it`);
      });
    } else {
      process.stderr.write(`SKIPPED tests that need ${path}: ${message}\n`);
      it.skip(`SKIPPED: ${message}`, () => undefined);
    }
  }
  return { path, available, skip: !available && process.env.CI !== 'true' };
}
