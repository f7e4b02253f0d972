/**
 * Child process of test/integration/lines-memory.test.ts: reads a file line by line (`lines`: readLines; `readline`:
 * node:readline, the control) and prints what came through and the peak growth of live memory (JS heap + array
 * buffers), measured after a forced GC on every line and every 20 ms, so garbage not yet collected does not count.
 * Run with --single-threaded-gc: otherwise V8 frees dead array buffers on another thread some time after the GC,
 * and the figure depends on how busy the machine is.
 * Run as: node --expose-gc --single-threaded-gc --import tsx read-lines-memory.ts <lines|readline> <file> <maxLineBytes>
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { readLines } from '../../src/events/lines.ts';

const [mode, path, max] = process.argv.slice(2) as [string, string, string];
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const live = () => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const base = live();
let peak = base;
const timer = setInterval(() => (peak = Math.max(peak, live())), 20);
const items: { kind: string; bytes: number; prefix?: string }[] = [];
if (mode === 'lines') {
  for await (const item of readLines(path, { maxLineBytes: Number(max) })) {
    peak = Math.max(peak, live());
    items.push(item.kind === 'text' ? { kind: 'text', bytes: Buffer.byteLength(item.text) } : { kind: 'too_long', bytes: item.bytes, prefix: item.prefix });
  }
} else {
  for await (const line of createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })) {
    peak = Math.max(peak, live());
    const bytes = Buffer.byteLength(line);
    items.push(bytes > Number(max) ? { kind: 'too_long', bytes } : { kind: 'text', bytes });
  }
}
clearInterval(timer);
process.stdout.write(JSON.stringify({ items, growthBytes: peak - base }) + '\n');
