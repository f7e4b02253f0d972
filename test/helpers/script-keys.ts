/**
 * Redis Cluster readiness of our Lua scripts, observed on a real redis-server: every call of one of our scripts
 * (known by the SHA1 of the text src/redis/scripts.ts sends) is checked for
 *  (a) keys its commands touched that are not among its KEYS, and
 *  (b) KEYS that do not all hash to one Cluster slot.
 * BullMQ's scripts and any other EVAL/EVALSHA are counted, not checked.
 *
 * How: MONITOR on a connection of its own. A script's commands are printed as `[0 lua]` lines, contiguous because a
 * script is atomic. Redis 7.0 prints EVAL/EVALSHA/FCALL before them (call() feeds MONITOR after a command has run,
 * so those commands feed it themselves first; 6.2 fed every command before it ran), even one refused with NOSCRIPT.
 * The checker does not rely on it: a probe script at start tells which order the server uses. Each command's keys
 * come from COMMAND GETKEYS, so no key position is guessed here.
 *
 * MONITOR costs the server a lot and sees every client: point it at a private redis-server only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { basename } from 'node:path';
import * as bullmqScripts from 'bullmq/dist/esm/scripts/index.js';
import keySlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { loadScript, type ScriptFile } from '../../src/redis/scripts.ts';
import { RULES } from '../../src/rules/registry.ts';
import { rulesScript } from '../../src/rules/script.ts';
import { parseMonitorLine, reprBytes, type MonitorLine } from './monitor-line.ts';

export interface ProjectScript extends ScriptFile {
  /** From the repository root. */
  path: string;
}

const SRC = new URL('../../src/', import.meta.url);

/**
 * Every script under src/ as it is sent: `<name>-<numberOfKeys>.lua` and `<name>-n.lua` files (other .lua files are
 * rule fragments or included ones), the rules core assembled with the registry's rules as src/rules/charge-rules.ts
 * does, the others with their includes as src/redis/scripts.ts does.
 */
export function projectScripts(): ProjectScript[] {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => /^\w+-(\d+|n)\.lua$/.test(basename(f))).sort();
  const scripts = files.map((file): ProjectScript => {
    const url = new URL(file, SRC);
    const text = readFileSync(url, 'utf8');
    const path = `src/${file}`;
    if (/^--- @rules /m.test(text)) return { ...rulesScript(url, RULES).script, path };
    // Assembled as sent (its --- @include lines replaced): the SHA1 of the file as written would match nothing.
    return { ...loadScript(url), path };
  });
  const names = scripts.map((s) => s.name);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length) throw new Error(`two script files share the name ${twice.join(', ')}: the report is by name`);
  return scripts;
}

/** What Redis names a script by: the SHA1 of its text, UTF-8 encoded as ioredis sends it. */
export function scriptSha(lua: string | Uint8Array): string {
  return createHash('sha1').update(lua).digest('hex');
}

/** BullMQ's scripts by SHA1 (it defines each on the connection with its `content`, as ours are). */
export function bullmqScriptNames(): Map<string, string> {
  const names = new Map<string, string>();
  for (const s of Object.values(bullmqScripts) as { name: string; content: string }[]) names.set(scriptSha(s.content), `bullmq ${s.name}`);
  return names;
}

export interface WatchOptions {
  /** Our scripts: only their calls are checked. */
  scripts: readonly ScriptFile[];
  /** Scripts that are not ours, by SHA1, so the report can name them. @defaultValue {@link bullmqScriptNames} */
  others?: ReadonlyMap<string, string>;
  /** @defaultValue 127.0.0.1 */
  host?: string;
}

export interface ScriptReport {
  name: string;
  sha: string;
  /** Calls that ran. */
  calls: number;
  /** Calls Redis refused before running: NOSCRIPT (ioredis then sends EVAL, a call that ran), a bad key count. */
  refused: number;
  /** Commands its calls ran (redis.call and redis.pcall). */
  commands: number;
  /** Distinct keys touched but not among the call's KEYS (the first 50 seen), and how many there were. */
  undeclaredKeys: string[];
  undeclaredKeyCount: number;
  undeclaredCalls: number;
  undeclaredExample?: { key: string; command: string[]; keys: string[] };
  crossSlotCalls: number;
  /** Of the cross-slot calls, the one with the fewest KEYS: each KEYS[i] with its slot. */
  crossSlotExample?: { key: string; slot: number }[];
  /** Commands that reach keys no argument names (KEYS, SCAN, RANDOMKEY, SORT … BY/GET patterns): undeclared by nature. */
  unnamedKeyCommands: Record<string, number>;
  /** Commands that ran without a key (TIME, …), by name. */
  keyless: Record<string, number>;
}

export interface Report {
  /** Where this server prints EVAL/EVALSHA: before its script's commands (Redis 7.0) or after them. */
  order: Order;
  scripts: Record<string, ScriptReport>;
  neverCalled: string[];
  /** Calls of scripts that are not ours: BullMQ's by name, others by SHA1 and the start of their text when seen. */
  others: { script: string; calls: number }[];
  /** Lines the checker could not account for; a correct run has none. */
  anomalies: string[];
}

type Order = 'script-first' | 'commands-first';

interface Call {
  script: ScriptReport | null;
  keys: Buffer[];
  commands: Buffer[][];
}

const EVALS = new Set(['eval', 'eval_ro', 'evalsha', 'evalsha_ro']);
const FCALLS = new Set(['fcall', 'fcall_ro']);
const PROBE_LUA = "return redis.call('exists', KEYS[1]) -- script-keys probe";
const PROBE_SHA = scriptSha(PROBE_LUA);
const EXAMPLE_KEYS = 50;

/**
 * Starts watching the redis-server on `port`. Start it before the workload and stop it after: stop() waits until
 * every command sent before it has been seen and checked.
 */
export async function watchScriptKeys(port: number, options: WatchOptions): Promise<{ stop(): Promise<Report> }> {
  const watch = new ScriptKeyWatch(options);
  await watch.start(options.host ?? '127.0.0.1', port);
  return { stop: () => watch.stop() };
}

class ScriptKeyWatch {
  private readonly ours = new Map<string, ScriptReport>();
  private readonly others = new Map<string, { script: string; calls: number }>();
  private readonly otherNames: ReadonlyMap<string, string>;
  private readonly anomalies: string[] = [];
  private readonly undeclared = new Map<ScriptReport, Set<string>>();
  /** SHA1s the server has cached, so an EVALSHA refused with NOSCRIPT is not taken for a call that ran nothing. */
  private readonly loaded = new Set<string>();
  private order: Order | undefined;
  /** Lines before the probe told the order. */
  private early: MonitorLine[] = [];
  private current: Call | null = null;
  private pending: Buffer[][] = [];
  private work: Promise<void> = Promise.resolve();
  private redis!: Redis;
  private keys!: KeyResolver;
  private closeMonitor: () => void = () => undefined;
  private readonly probeKey = `script-keys:probe:${randomBytes(6).toString('hex')}`;
  private readonly endMarker = `script-keys:end:${randomBytes(6).toString('hex')}`;
  private onProbe: (() => void) | undefined;
  private onEnd: (() => void) | undefined;

  constructor(options: WatchOptions) {
    for (const s of options.scripts) {
      const sha = scriptSha(s.lua);
      this.ours.set(sha, { name: s.name, sha, calls: 0, refused: 0, commands: 0, undeclaredKeys: [], undeclaredKeyCount: 0, undeclaredCalls: 0, crossSlotCalls: 0, unnamedKeyCommands: {}, keyless: {} });
    }
    this.otherNames = options.others ?? bullmqScriptNames();
  }

  async start(host: string, port: number): Promise<void> {
    this.redis = new Redis({ host, port, maxRetriesPerRequest: 1, lazyConnect: true });
    // Failures reach the commands that meet them; without a listener ioredis also prints each reconnect attempt.
    this.redis.on('error', () => undefined);
    await this.redis.connect();
    this.keys = new KeyResolver(this.redis, (a) => this.anomalies.push(a));
    this.closeMonitor = await openMonitor(host, port, (line) => this.line(line), (problem) => this.anomalies.push(problem));
    const shas = [...this.ours.keys(), ...this.otherNames.keys()];
    const exists = (await this.redis.script('EXISTS', ...shas)) as number[];
    shas.forEach((sha, i) => exists[i] && this.loaded.add(sha));
    const probed = new Promise<void>((resolve) => (this.onProbe = resolve));
    await this.redis.eval(PROBE_LUA, 1, this.probeKey);
    // Where EVAL is printed after its commands, the next command's line is what shows the probe's lines are complete.
    await this.redis.echo(this.probeKey);
    await withTimeout(probed, 5_000, 'the probe script never showed in MONITOR');
  }

  async stop(): Promise<Report> {
    const ended = new Promise<void>((resolve) => (this.onEnd = resolve));
    await this.redis.echo(this.endMarker);
    await withTimeout(ended, 30_000, 'MONITOR did not catch up with the commands sent before stop()');
    this.closeMonitor();
    this.endCall();
    if (this.pending.length) this.anomalies.push(`${this.pending.length} script command(s) at the end with no EVAL/EVALSHA after them`);
    await this.work;
    this.redis.disconnect();
    const scripts = [...this.ours.values()];
    return {
      order: this.order!,
      scripts: Object.fromEntries(scripts.map((s) => [s.name, s])),
      neverCalled: scripts.filter((s) => s.calls === 0).map((s) => s.name),
      others: [...this.others.values()],
      anomalies: this.anomalies,
    };
  }

  private line(line: MonitorLine): void {
    if (this.order) return this.handle(line);
    this.early.push(line);
    const i = this.early.findIndex((l) => l.source !== 'lua' && EVALS.has(lower(l.args[0]!)) && l.args[3]?.toString() === this.probeKey);
    const j = this.early.findIndex((l) => l.source === 'lua' && l.args[1]?.toString() === this.probeKey);
    if (i < 0 || j < 0) return;
    this.order = i < j ? 'script-first' : 'commands-first';
    for (const l of this.early.splice(0)) this.handle(l);
    this.onProbe?.();
  }

  private handle({ source, args }: MonitorLine): void {
    if (source === 'lua') {
      if (this.order === 'commands-first') this.pending.push(args);
      else if (this.current) this.current.script && this.current.commands.push(args);
      else this.anomalies.push(`a script command with no EVAL/EVALSHA before it: ${show(args).join(' ')}`);
      return;
    }
    // A client's command: whatever script ran before it has ended (scripts are atomic).
    this.endCall();
    const name = lower(args[0]!);
    const call = EVALS.has(name) ? this.startCall(name, args) : FCALLS.has(name) ? this.countOther(`function ${show([args[1] ?? Buffer.alloc(0)])[0]}`) : undefined;
    if (this.order === 'commands-first') {
      const commands = this.pending.splice(0);
      if (call) {
        call.commands = commands;
        this.current = call;
        this.endCall();
      } else if (commands.length) {
        this.anomalies.push(`${commands.length} script command(s) followed by ${show([args[0]!])[0]} instead of their EVAL/EVALSHA`);
      }
    } else if (call) {
      this.current = call;
    }
    if (name === 'script') this.scriptCommand(args);
    if (name === 'echo' && args[1]?.toString() === this.endMarker) this.onEnd?.();
  }

  /** The call an EVAL/EVALSHA line starts, or null when Redis refused it before running anything. */
  private startCall(name: string, args: Buffer[]): Call | null {
    const isEval = !name.startsWith('evalsha');
    const sha = isEval ? scriptSha(args[1] ?? Buffer.alloc(0)) : (args[1]?.toString() ?? '').toLowerCase();
    const ours = this.ours.get(sha);
    const numkeys = Number(args[2]?.toString());
    if (!Number.isInteger(numkeys) || numkeys < 0 || numkeys > args.length - 3 || (!isEval && !this.loaded.has(sha))) {
      if (ours) ours.refused++;
      return null;
    }
    this.loaded.add(sha);
    if (sha === PROBE_SHA) return { script: null, keys: [], commands: [] };
    if (!ours) return this.countOther(sha, this.otherNames.get(sha) ?? (isEval ? `${sha} ${firstLine(args[1]!)}` : sha));
    ours.calls++;
    return { script: ours, keys: args.slice(3, 3 + numkeys), commands: [] };
  }

  private countOther(id: string, script = id): Call {
    const other = this.others.get(id) ?? { script, calls: 0 };
    other.calls++;
    this.others.set(id, other);
    return { script: null, keys: [], commands: [] };
  }

  private scriptCommand(args: Buffer[]): void {
    const sub = lower(args[1] ?? Buffer.alloc(0));
    if (sub === 'load' && args[2]) this.loaded.add(scriptSha(args[2]));
    if (sub === 'flush') this.loaded.clear();
  }

  private endCall(): void {
    const call = this.current;
    this.current = null;
    const script = call?.script;
    if (!call || !script) return;
    this.work = this.work.then(() => this.check({ ...call, script })).catch((e: Error) => void this.anomalies.push(`checking a call of ${script.name}: ${e.message}`));
  }

  private async check({ script: s, keys, commands }: Call & { script: ScriptReport }): Promise<void> {
    const declared = new Set(keys.map((k) => k.toString('latin1')));
    let undeclaredHere = false;
    s.commands += commands.length;
    for (const command of commands) {
      const name = lower(command[0]!);
      if (reachesUnnamedKeys(name, command)) s.unnamedKeyCommands[name] = (s.unnamedKeyCommands[name] ?? 0) + 1;
      const touched = await this.keys.of(command);
      if (touched === null) continue;
      if (touched.length === 0 && !reachesUnnamedKeys(name, command)) s.keyless[name] = (s.keyless[name] ?? 0) + 1;
      for (const key of touched) {
        const id = key.toString('latin1');
        if (declared.has(id)) continue;
        undeclaredHere = true;
        // Counted once per call and key: the same key in every call is one key.
        declared.add(id);
        const shown = show([key])[0]!;
        const distinct = this.undeclared.get(s) ?? new Set<string>();
        this.undeclared.set(s, distinct);
        if (!distinct.has(id)) {
          distinct.add(id);
          s.undeclaredKeyCount++;
          if (s.undeclaredKeys.length < EXAMPLE_KEYS) s.undeclaredKeys.push(shown);
        }
        s.undeclaredExample ??= { key: shown, command: show(command), keys: show(keys) };
      }
    }
    if (undeclaredHere) s.undeclaredCalls++;
    const slots = keys.map((k) => keySlot(k));
    if (new Set(slots).size > 1) {
      s.crossSlotCalls++;
      if (!s.crossSlotExample || s.crossSlotExample.length > keys.length) s.crossSlotExample = show(keys).map((key, i) => ({ key, slot: slots[i]! }));
    }
  }
}

/**
 * Keys of a command, as Redis itself finds them (COMMAND GETKEYS). A command whose key positions depend only on its
 * argument count (no "movablekeys" flag, no subcommands) is asked once per count, with placeholder arguments; any
 * other once per exact argument list. Null when Redis could not say (reported as an anomaly).
 */
class KeyResolver {
  private readonly info = new Map<string, Promise<{ keyless: boolean; byCount: boolean } | null>>();
  private readonly positions = new Map<string, Promise<number[] | null>>();
  private readonly exact = new Map<string, Promise<Buffer[] | null>>();

  constructor(
    private readonly redis: Redis,
    private readonly anomaly: (message: string) => void,
  ) {}

  async of(command: Buffer[]): Promise<Buffer[] | null> {
    const name = lower(command[0]!);
    const info = await cached(this.info, name, () => this.commandInfo(name));
    if (!info) return null;
    if (info.keyless) return [];
    if (!info.byCount) return cached(this.exact, command.map((a) => `${a.length}:${a.toString('latin1')}`).join(''), () => this.getKeys(command));
    const at = await cached(this.positions, `${name}/${command.length}`, async () => {
      const placeholders = command.map((a, i) => (i === 0 ? a : Buffer.from(`\0script-keys-arg-${i}`)));
      const keys = await this.getKeys(placeholders);
      return keys && keys.map((k) => placeholders.findIndex((p) => p.equals(k)));
    });
    return at && at.map((i) => command[i]!);
  }

  private async commandInfo(name: string) {
    const [info] = (await this.redis.call('COMMAND', 'INFO', name)) as ([string, number, string[], number, number, number, string[], unknown[], unknown[], unknown[]] | null)[];
    if (!info) {
      this.anomaly(`COMMAND INFO does not know ${name}`);
      return null;
    }
    const [, , flags, , , , , , keySpecs, subcommands] = info;
    const movable = flags.includes('movablekeys');
    return { keyless: !movable && keySpecs.length === 0, byCount: !movable && subcommands.length === 0 };
  }

  private async getKeys(command: Buffer[]): Promise<Buffer[] | null> {
    try {
      return (await this.redis.callBuffer('COMMAND', 'GETKEYS', ...command)) as Buffer[];
    } catch (e) {
      // A command with key specs whose arguments name none (SORT_RO with only a pattern, say) answers this.
      if (/no key arguments/.test((e as Error).message)) return [];
      this.anomaly(`COMMAND GETKEYS ${show(command).join(' ')}: ${(e as Error).message}`);
      return null;
    }
  }
}

/** Commands whose keys are not all in their arguments; COMMAND GETKEYS names none of those. */
function reachesUnnamedKeys(name: string, command: Buffer[]): boolean {
  if (name === 'keys' || name === 'scan' || name === 'randomkey') return true;
  if (name !== 'sort' && name !== 'sort_ro') return false;
  // SORT looks keys up by a BY or GET pattern with a "*" in it ("nosort", "#" and constants look nothing up).
  return command.some((a, i) => i >= 2 && /^(by|get)$/i.test(a.toString()) && command[i + 1]?.includes('*'));
}

function openMonitor(host: string, port: number, onLine: (line: MonitorLine) => void, onProblem: (message: string) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let ready = false;
    let closing = false;
    let rest = '';
    socket.on('connect', () => socket.write('MONITOR\r\n'));
    socket.on('error', (e) => (ready ? onProblem(`MONITOR connection: ${e.message}`) : reject(e)));
    socket.on('close', () => !closing && ready && onProblem('MONITOR connection closed before stop()'));
    socket.on('data', (chunk) => {
      // latin1: one character per byte, so a byte Redis left unescaped reaches the parser as itself.
      const replies = (rest + chunk.toString('latin1')).split('\r\n');
      rest = replies.pop()!;
      for (const reply of replies) {
        if (!ready) {
          if (reply !== '+OK') return reject(new Error(`MONITOR answered ${reply}`));
          ready = true;
          resolve(() => {
            closing = true;
            socket.destroy();
          });
        } else if (reply.startsWith('+')) {
          try {
            onLine(parseMonitorLine(reply.slice(1)));
          } catch (e) {
            onProblem((e as Error).message);
          }
        } else {
          onProblem(`MONITOR sent ${reply}`);
        }
      }
    });
  });
}

function cached<T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) map.set(key, (p = make()));
  return p;
}

async function withTimeout(p: Promise<void>, ms: number, message: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const lower = (b: Buffer) => b.toString('latin1').toLowerCase();

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Arguments as text: UTF-8 when they are, else escaped as MONITOR does. */
function show(args: Buffer[]): string[] {
  return args.map((a) => {
    try {
      const s = utf8.decode(a);
      return /[\x00-\x1f\x7f]/.test(s) ? reprBytes(a) : s;
    } catch {
      return reprBytes(a);
    }
  });
}

function firstLine(body: Buffer): string {
  // The first line with a word in it: a header's "--[[" says nothing.
  const line = body.toString('utf8').split('\n').find((l) => /\w/.test(l))?.trim() ?? '';
  return line.length > 60 ? `${line.slice(0, 60)}…` : line;
}

/** What a test prints when it fails: per script, what is wrong and one example of it. */
export function describeReport(report: Report): string {
  const out: string[] = [];
  for (const s of Object.values(report.scripts)) {
    const wrong: string[] = [];
    if (s.undeclaredCalls) {
      const e = s.undeclaredExample!;
      const more = s.undeclaredKeyCount > 3 ? ` and ${s.undeclaredKeyCount - 3} more` : '';
      wrong.push(
        `  ${s.undeclaredCalls} of ${s.calls} calls touch keys not in KEYS: ${s.undeclaredKeys.slice(0, 3).join(', ')}${more}\n` +
          `    e.g. ${e.command.map(quote).join(' ')}\n    while KEYS were ${e.keys.length ? e.keys.map(quote).join(' ') : '(none)'}`,
      );
    }
    for (const [name, n] of Object.entries(s.unnamedKeyCommands)) wrong.push(`  ${n} × ${name.toUpperCase()}: reaches keys no argument names`);
    if (s.crossSlotCalls) {
      const bySlot = new Map<number, string[]>();
      for (const { key, slot } of s.crossSlotExample!) bySlot.set(slot, [...(bySlot.get(slot) ?? []), key]);
      const groups = [...bySlot].slice(0, 10).map(([slot, keys]) => `    slot ${slot}: ${keys.slice(0, 3).map(quote).join(' ')}${keys.length > 3 ? ` and ${keys.length - 3} more` : ''}`);
      if (bySlot.size > 10) groups.push(`    and ${bySlot.size - 10} more slots`);
      wrong.push(`  ${s.crossSlotCalls} of ${s.calls} calls have KEYS in more than one slot; e.g. a call with ${s.crossSlotExample!.length} KEYS:\n${groups.join('\n')}`);
    }
    if (wrong.length) out.push(`${s.name} (${s.sha.slice(0, 10)}):\n${wrong.join('\n')}`);
  }
  if (report.neverCalled.length) out.push(`never called: ${report.neverCalled.join(', ')}`);
  const unknown = report.others.filter((o) => !o.script.startsWith('bullmq '));
  if (unknown.length) out.push(`scripts that are neither ours nor BullMQ's: ${unknown.map((o) => `${o.script} (${o.calls})`).join('; ')}`);
  if (report.anomalies.length) out.push(`anomalies:\n${report.anomalies.slice(0, 10).map((a) => `  ${a}`).join('\n')}`);
  if (!out.length) out.push('every call of every script kept its keys in KEYS, in one slot');
  out.push(`calls (commands run): ${Object.values(report.scripts).map((s) => `${s.name} ${s.calls} (${s.commands})`).join(', ')}`);
  return out.join('\n');
}

const quote = (s: string) => (/^[\w:{}.\-@#/%]+$/.test(s) ? s : JSON.stringify(s));
