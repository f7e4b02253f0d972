/**
 * Reading NDJSON input line by line with a byte bound, for the CLI tools (produce, replay). readline holds a whole
 * line before it hands it over, so one 600 MB line took 600 MB (and more as a string) and crashed the tool; here a
 * line longer than `maxLineBytes` is reported as too long, with its length and a short prefix, and never held:
 * at most `maxLineBytes` + 1 bytes of a line and one chunk of the input are in memory at any time.
 *
 * Lines end at "\n"; a "\r" just before it is dropped (CRLF files). A lone "\r" is not a line end (JSON reads it as
 * whitespace). The last line need not end with "\n". Bytes are decoded as UTF-8 once a line is complete, so a
 * character split across chunks comes through whole; invalid bytes become U+FFFD, as with readline.
 */
import { createReadStream } from 'node:fs';
import { parseEventLine, rejected, type EventRejectLabel, type RiskEvent } from './schema.ts';

export type LineItem =
  /** A line within the bound, without its line end. */
  | { line: number; kind: 'text'; text: string }
  /** A line longer than the bound: its length without the line end, and its first bytes (see `prefixBytes`). */
  | { line: number; kind: 'too_long'; bytes: number; prefix: string };

export interface ReadLinesOptions {
  /** Longest line yielded as text, in UTF-8 bytes without the line end. */
  maxLineBytes: number;
  /**
   * Bytes of a too-long line kept as its prefix, cut back to a whole character and to before any trailing run of
   * digits (a card number cut there would escape masking). @defaultValue 256
   */
  prefixBytes?: number;
  /** Read size for a file path, bytes. @defaultValue 65536 */
  chunkBytes?: number;
}

const NL = 0x0a;
const CR = 0x0d;

/** The lines of a file (path) or of a byte stream, in order, numbered from 1. */
export async function* readLines(input: string | AsyncIterable<Uint8Array | string>, options: ReadLinesOptions): AsyncGenerator<LineItem> {
  const { maxLineBytes } = options;
  const prefixBytes = options.prefixBytes ?? 256;
  if (!Number.isInteger(maxLineBytes) || maxLineBytes < 0) throw new RangeError(`maxLineBytes must be a whole number, got ${maxLineBytes}`);
  const source = typeof input === 'string' ? createReadStream(input, { highWaterMark: options.chunkBytes ?? 65_536 }) : input;

  let line = 0;
  // The current line so far, while within the bound (+1 for a "\r" that may turn out to be its CRLF end).
  let parts: Buffer[] = [];
  let held = 0;
  // Once past the bound: only its first bytes, its length and its last byte are kept.
  let prefix: Buffer | null = null;
  let total = 0;
  let lastByte = -1;
  // A few bytes past the prefix tell whether it ends inside a character.
  const keep = prefixBytes + 4;

  const add = (bytes: Buffer, copy: boolean) => {
    if (bytes.length === 0) return;
    total += bytes.length;
    lastByte = bytes[bytes.length - 1]!;
    if (prefix) {
      if (prefix.length < keep) prefix = Buffer.concat([prefix, bytes.subarray(0, keep - prefix.length)]);
      return;
    }
    if (held + bytes.length > maxLineBytes + 1) {
      // A copy: the chunk it came from is not kept.
      prefix = Buffer.concat([...parts, bytes.subarray(0, Math.max(0, keep - held))]).subarray(0, keep);
      parts = [];
      held = 0;
      return;
    }
    // A part that outlives this chunk is copied, so a held line never keeps a whole chunk alive.
    parts.push(copy ? Buffer.from(bytes) : bytes);
    held += bytes.length;
  };

  const finish = (): LineItem => {
    line++;
    let item: LineItem;
    const bytes = total - (lastByte === CR ? 1 : 0);
    if (prefix) {
      item = { line, kind: 'too_long', bytes, prefix: textPrefix(prefix, prefixBytes, true) };
    } else {
      const whole = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      const body = lastByte === CR ? whole.subarray(0, whole.length - 1) : whole;
      item =
        body.length > maxLineBytes
          ? { line, kind: 'too_long', bytes: body.length, prefix: textPrefix(body, prefixBytes, body.length > prefixBytes) }
          : { line, kind: 'text', text: body.toString('utf8') };
    }
    parts = [];
    held = 0;
    prefix = null;
    total = 0;
    lastByte = -1;
    return item;
  };

  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(NL, start);
      if (nl === -1) {
        add(buf.subarray(start), true);
        break;
      }
      add(buf.subarray(start, nl), false);
      yield finish();
      start = nl + 1;
    }
  }
  if (total > 0) yield finish();
}

/** Counts the lines of a file as readLines numbers them, holding one chunk at a time. */
export async function countLines(path: string): Promise<number> {
  let n = 0;
  let last = NL;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(NL); i !== -1; i = chunk.indexOf(NL, i + 1)) n++;
    if (chunk.length > 0) last = chunk[chunk.length - 1]!;
  }
  return last === NL ? n : n + 1;
}

/** One line of an event file: the event, or why the line is rejected with the text to dead-letter. */
export type EventLine = { line: number; ok: true; event: RiskEvent; occurredAtMs: number } | { line: number; ok: false; reason: string; label: EventRejectLabel; raw: string };

/**
 * The events of an NDJSON file, line by line: what produce and replay read. A line longer than `maxLineBytes` is
 * rejected as "line longer than N bytes" (the reason parseEventLine gives) with its prefix and length as raw text.
 */
export async function* readEventLines(path: string, maxLineBytes: number): AsyncGenerator<EventLine> {
  for await (const item of readLines(path, { maxLineBytes })) {
    if (item.kind === 'too_long') {
      yield { line: item.line, ok: false, reason: `line longer than ${maxLineBytes} bytes`, label: 'too_long', raw: `${item.prefix}… (${item.bytes} bytes)` };
      continue;
    }
    const parsed = item.text.trim() === '' ? rejected('empty line', 'invalid_json') : parseEventLine(item.text, maxLineBytes);
    yield parsed.ok ? { line: item.line, ok: true, event: parsed.event, occurredAtMs: parsed.occurredAtMs } : { line: item.line, ok: false, reason: parsed.reason, label: parsed.label, raw: item.text };
  }
}

/** The first `max` bytes as text, ending on a whole character; when cut, also before any trailing digit run. */
function textPrefix(bytes: Buffer, max: number, cut: boolean): string {
  let end = Math.min(max, bytes.length);
  // Back off from the middle of a multi-byte character (continuation bytes are 10xxxxxx).
  if (end < bytes.length) while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  const text = bytes.subarray(0, end).toString('utf8');
  return cut ? text.replace(/[\p{Nd}\s.\-]+$/u, '') : text;
}
