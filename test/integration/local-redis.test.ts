/** The private redis-server a newcomer gets when nothing answers on 6379 (also what chaos tests use). */
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisServerMissingError, startRedisServer, tcpAnswers } from '../../src/redis/local-server.ts';

describe('private redis-server', () => {
  it('starts on a free port with noeviction and stops cleanly', async () => {
    const server = await startRedisServer();
    const redis = new Redis(server.url);
    expect(await redis.ping()).toBe('PONG');
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    redis.disconnect();
    await server.stop();
    expect(await tcpAnswers('127.0.0.1', server.port)).toBe(false);
  });

  it('says exactly what to install when the binary is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(startRedisServer()).rejects.toThrow(RedisServerMissingError);
      await expect(startRedisServer()).rejects.toThrow(/apt-get install -y redis-server.*docker run -d -p 127.0.0.1:6379:6379 redis/);
    } finally {
      process.env.PATH = path;
    }
  });
});
