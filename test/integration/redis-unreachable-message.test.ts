/**
 * Why Redis cannot be reached is in the refusal: the connection's own error (refused, a name that does not
 * resolve, a TLS certificate not trusted: tls.test.ts), with any card number in it masked.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { assertReachable, createRedis } from '../../src/redis/connection.ts';

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('Redis unreachable', () => {
  it('says the connection was refused', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const redis = createRedis(url);
    try {
      await expect(assertReachable(redis, url, 1_500)).rejects.toThrow(/no answer within 1500 ms; the connection failed with: connect ECONNREFUSED/);
    } finally {
      redis.disconnect();
    }
  });

  it('masks a card number typed as the host', async () => {
    const url = 'redis://4111-1111-1111-1111.invalid:6379';
    const redis = createRedis(url);
    let message = '';
    try {
      await assertReachable(redis, url, 1_500);
    } catch (e) {
      message = (e as Error).message;
    } finally {
      redis.disconnect();
    }
    expect(message).toMatch(/ENOTFOUND/);
    expect(message).not.toMatch(/4111-1111-1111-1111/);
  });
});
