/**
 * Finds the Redis the tests use: REDIS_URL, else 127.0.0.1:6379, else a private redis-server started here
 * (and stopped after the run). Tests read it with `inject('redisUrl')`.
 */
import type { TestProject } from 'vitest/node';
import { resolveRedisUrl } from '../src/redis/local-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const { url, started } = await resolveRedisUrl(process.env.REDIS_URL);
  process.env.REDIS_URL = url;
  project.provide('redisUrl', url);
  return async () => {
    await started?.stop();
  };
}
