/**
 * Lua scripts live beside the code that calls them as `<name>-<numberOfKeys>.lua`; this registers each one as an
 * ioredis command (EVALSHA, falling back to EVAL after a Redis restart) on a connection, pipelines included.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { ChainableCommander, Redis } from 'ioredis';

export type ScriptTarget = Redis | ChainableCommander;

export interface ScriptFile {
  name: string;
  numberOfKeys: number;
  lua: string;
}

export function loadScript(url: URL): ScriptFile {
  const m = /^(\w+)-(\d+)\.lua$/.exec(basename(url.pathname));
  if (!m) throw new Error(`script file name must be <name>-<numberOfKeys>.lua: ${url.pathname}`);
  return { name: m[1]!, numberOfKeys: Number(m[2]), lua: readFileSync(url, 'utf8') };
}

/** Defines the script on the connection once; returns a caller usable on it or on its pipelines. */
export function defineScript(redis: Redis, script: ScriptFile) {
  if (!(script.name in redis)) {
    redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  return (target: ScriptTarget, keys: string[], args: (string | number)[]) => {
    if (keys.length !== script.numberOfKeys) {
      throw new Error(`${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
    }
    const fn = (target as unknown as Record<string, (...a: (string | number)[]) => unknown>)[script.name];
    if (typeof fn !== 'function') throw new Error(`script ${script.name} is not defined on this connection`);
    return fn.call(target, ...keys, ...args);
  };
}
