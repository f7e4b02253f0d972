/**
 * One line of Redis MONITOR output, parsed back to the bytes the command carried:
 *
 *   1796236016.912528 [0 lua] "set" "k\"1" "a\\b\x00c"
 *   1796236016.912462 [0 127.0.0.1:54078] "eval" "..." "1" "k\"1"
 *
 * Each argument is written by sdscatrepr (Redis src/sds.c): `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b`, every other
 * byte outside 0x20–0x7e as `\xHH`. ioredis's own monitor() only unescapes `\"` and splits on `" "`, which breaks
 * on an argument that contains `" "` or a backslash; hence this parser.
 */

export interface MonitorLine {
  /** "<seconds>.<microseconds>", as printed. */
  time: string;
  db: number;
  /** "lua" for a command a script ran; else the client's address ("127.0.0.1:54078", "unix:/tmp/r.sock", "[::1]:6379"). */
  source: string;
  /** The command name and its arguments, byte for byte. */
  args: Buffer[];
}

export class MonitorLineError extends Error {
  override name = 'MonitorLineError';
  constructor(message: string, line: string) {
    super(`${message}: ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`);
  }
}

const SIMPLE_ESCAPES: Record<string, number> = { '\\': 0x5c, '"': 0x22, n: 0x0a, r: 0x0d, t: 0x09, a: 0x07, b: 0x08 };

/**
 * `line` is the text of the status reply without "+" and CRLF. Read it as latin1 when it comes off a socket, so a
 * byte Redis left unescaped (a locale where it is printable) is kept as that byte.
 */
export function parseMonitorLine(line: string): MonitorLine {
  const head = /^(\d+\.\d+) \[(\d+) (\S+)\] /.exec(line);
  if (!head) throw new MonitorLineError('not a MONITOR line', line);
  const [prefix, time, db, source] = head as unknown as [string, string, string, string];
  const args: Buffer[] = [];
  let i = prefix.length;
  while (i < line.length) {
    if (line[i] !== '"') throw new MonitorLineError(`expected " at column ${i + 1}`, line);
    i++;
    const bytes: number[] = [];
    for (;;) {
      if (i >= line.length) throw new MonitorLineError('unterminated argument', line);
      const c = line[i]!;
      if (c === '"') {
        i++;
        break;
      }
      if (c !== '\\') {
        bytes.push(line.charCodeAt(i) & 0xff);
        i++;
        continue;
      }
      const e = line[i + 1];
      if (e === 'x') {
        const hex = line.slice(i + 2, i + 4);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new MonitorLineError(`bad \\x escape at column ${i + 1}`, line);
        bytes.push(parseInt(hex, 16));
        i += 4;
      } else if (e !== undefined && e in SIMPLE_ESCAPES) {
        bytes.push(SIMPLE_ESCAPES[e]!);
        i += 2;
      } else {
        throw new MonitorLineError(`unknown escape \\${e ?? ''} at column ${i + 1}`, line);
      }
    }
    args.push(Buffer.from(bytes));
    if (i < line.length) {
      if (line[i] !== ' ') throw new MonitorLineError(`expected a space after the argument ending at column ${i}`, line);
      i++;
      if (i === line.length) throw new MonitorLineError('trailing space', line);
    }
  }
  if (args.length === 0) throw new MonitorLineError('no command', line);
  return { time, db: Number(db), source, args };
}

/** The escaping MONITOR uses (sdscatrepr, without the quotes): for messages, and for the parser's tests. */
export function reprBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x5c) out += '\\\\';
    else if (b === 0x22) out += '\\"';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x07) out += '\\a';
    else if (b === 0x08) out += '\\b';
    else if (b >= 0x20 && b <= 0x7e) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}
