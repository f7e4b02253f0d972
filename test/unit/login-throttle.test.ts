/** The dashboard's failed-login throttle on its own, with a clock the test moves (the HTTP tests use the real one). */
import { describe, expect, it } from 'vitest';
import { clientKey, LoginThrottle } from '../../src/http/login-throttle.ts';
import { parseBasicAuth } from '../../src/http/server.ts';

function throttle(options: { maxFailures: number; windowMs: number; globalMaxFailures: number }) {
  let now = 1_000_000;
  const t = new LoginThrottle({ ...options, now: () => now });
  return { t, advance: (ms: number) => (now += ms) };
}

describe('LoginThrottle', () => {
  it('refuses a client from its maxFailures-th failure until the window that its first failure opened ends', () => {
    const { t, advance } = throttle({ maxFailures: 3, windowMs: 10_000, globalMaxFailures: 100 });
    t.failed('a');
    advance(4_000);
    t.failed('a');
    expect(t.retryAfterMs('a')).toBe(0);
    expect(t.failed('a')).toEqual({ clientBlocked: true, globalBlocked: false });
    expect(t.retryAfterMs('a')).toBe(6_000);
    expect(t.retryAfterMs('b')).toBe(0);
    advance(5_999);
    expect(t.retryAfterMs('a')).toBe(1);
    advance(1);
    expect(t.retryAfterMs('a')).toBe(0);
    // A new window: one failure is not enough.
    t.failed('a');
    expect(t.retryAfterMs('a')).toBe(0);
  });

  it('forgets a client\'s failures when it logs in, but not the global count', () => {
    const { t } = throttle({ maxFailures: 3, windowMs: 10_000, globalMaxFailures: 6 });
    t.failed('a');
    t.failed('a');
    t.succeeded('a');
    t.failed('a');
    t.failed('a');
    expect(t.retryAfterMs('a')).toBe(0);
    expect(t.failed('b')).toEqual({ clientBlocked: false, globalBlocked: false });
    expect(t.failed('c').globalBlocked).toBe(true);
    expect(t.retryAfterMs('someone-else')).toBeGreaterThan(0);
  });

  it('tracks a bounded number of clients: expired windows are dropped as new clients fail', () => {
    const { t, advance } = throttle({ maxFailures: 5, windowMs: 1_000, globalMaxFailures: 50 });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) t.failed(`10.0.${round}.${i}`);
      advance(1_000);
    }
    expect(t.trackedClients).toBeLessThanOrEqual(100);
  });
});

describe('clientKey', () => {
  it('keys IPv4 by address (mapped or not) and IPv6 by its /64', () => {
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('2001:db8:a:b:c:d:e:f')).toBe('2001:db8:a:b::/64');
    expect(clientKey('2001:db8:a:b::1')).toBe(clientKey('2001:0db8:000a:000b:ffff:ffff:ffff:ffff'));
    expect(clientKey('2001:db8:a:c::1')).not.toBe(clientKey('2001:db8:a:b::1'));
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey(undefined)).toBe('unknown');
  });
});

describe('parseBasicAuth', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it('reads user and password (the password may hold ":"), and nothing from malformed headers', () => {
    expect(parseBasicAuth(`Basic ${b64('ops:pa:ss')}`)).toEqual({ user: 'ops', password: 'pa:ss' });
    expect(parseBasicAuth(`basic ${b64('ops:')}`)).toEqual({ user: 'ops', password: '' });
    for (const h of [undefined, '', 'Basic', `Bearer ${b64('ops:x')}`, `Basic ${b64('no-colon')}`, 'Basic !!!']) expect(parseBasicAuth(h)).toBeUndefined();
  });
});
