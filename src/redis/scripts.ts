/**
 * Lua scripts live beside the code that calls them as `<name>-<numberOfKeys>.lua`, or `<name>-n.lua` when the
 * number of keys varies per call (a script over a run of events); this registers each one as an ioredis command
 * (EVALSHA, falling back to EVAL after a Redis restart) on a connection, pipelines included. A line
 * `--- @include <file>.lua` is replaced by that file (a path relative to the script): Lua functions two scripts share
 * (src/quota/credit-give-back.lua) have one owner.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './client.ts';

export type ScriptTarget = RedisClient | ChainableCommander;

export interface ScriptFile {
  name: string;
  /** null: the caller's key count, per call. */
  numberOfKeys: number | null;
  lua: string;
}

export function loadScript(url: URL): ScriptFile {
  const m = /^(\w+)-(\d+|n)\.lua$/.exec(basename(url.pathname));
  if (!m) throw new Error(`script file name must be <name>-<numberOfKeys>.lua or <name>-n.lua: ${url.pathname}`);
  return { name: m[1]!, numberOfKeys: m[2] === 'n' ? null : Number(m[2]), lua: withIncludes(url) };
}

function withIncludes(url: URL, depth = 0): string {
  if (depth > 4) throw new Error(`script includes nest too deep at ${url.pathname}`);
  return readFileSync(url, 'utf8').replace(/^--- @include (\S+\.lua)$/gm, (_, path: string) => withIncludes(new URL(path, url), depth + 1));
}

/** Defines the script on the connection once; returns a caller usable on it or on its pipelines. */
export function defineScript(redis: RedisClient, script: ScriptFile) {
  if (!(script.name in redis)) {
    redis.defineCommand(script.name, script.numberOfKeys === null ? { lua: script.lua } : { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  return (target: ScriptTarget, keys: string[], args: (string | number)[]) => {
    if (script.numberOfKeys !== null && keys.length !== script.numberOfKeys) {
      throw new Error(`${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
    }
    const fn = (target as unknown as Record<string, (...a: (string | number)[]) => unknown>)[script.name];
    if (typeof fn !== 'function') throw new Error(`script ${script.name} is not defined on this connection`);
    return script.numberOfKeys === null ? fn.call(target, keys.length, ...keys, ...args) : fn.call(target, ...keys, ...args);
  };
}
