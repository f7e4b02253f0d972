/**
 * Failed-login throttling for the queue dashboard's basic auth (issue 11, finding 10: 5,776 wrong logins went
 * through in 2 s). Fixed windows that open at a first failure: after `maxFailures` wrong logins from one client
 * within `windowMs`, that client is refused until its window ends; after `globalMaxFailures` from all clients
 * together, every client is, so a guesser spread over many addresses is slowed as well. While refused, credentials
 * are not checked at all: a 429 tells a guesser nothing about the password it sent.
 *
 * State is in the process's memory (each service process throttles its own logins) and bounded: at most
 * `globalMaxFailures` failures are counted per window, so at most that many clients are tracked besides expired
 * ones, which are dropped as the map grows.
 */
import { isIP } from 'node:net';

export interface LoginThrottleOptions {
  /** Wrong logins from one client within the window before it is refused. @defaultValue 10 */
  maxFailures: number;
  /** Window length, ms, counted from the client's (or, globally, the first) failure. @defaultValue 300000 */
  windowMs: number;
  /** Wrong logins from all clients within the window before every client is refused. @defaultValue 100 */
  globalMaxFailures: number;
  /** @defaultValue Date.now */
  now?: () => number;
}

interface Window {
  count: number;
  since: number;
}

/** What a failure changed: whether it closed the client's or the global window (worth one log line each). */
export interface FailureResult {
  clientBlocked: boolean;
  globalBlocked: boolean;
}

export class LoginThrottle {
  private readonly clients = new Map<string, Window>();
  private global: Window = { count: 0, since: 0 };
  private readonly now: () => number;

  constructor(private readonly options: LoginThrottleOptions) {
    this.now = options.now ?? Date.now;
  }

  /** How long this client must wait before its credentials are checked again, ms; 0 = check them now. */
  retryAfterMs(client: string): number {
    const now = this.now();
    const { windowMs, maxFailures, globalMaxFailures } = this.options;
    if (this.global.count >= globalMaxFailures && now - this.global.since < windowMs) return this.global.since + windowMs - now;
    const w = this.clients.get(client);
    if (w && w.count >= maxFailures && now - w.since < windowMs) return w.since + windowMs - now;
    return 0;
  }

  failed(client: string): FailureResult {
    const now = this.now();
    const { windowMs, maxFailures, globalMaxFailures } = this.options;
    if (now - this.global.since >= windowMs) this.global = { count: 0, since: now };
    this.global.count++;
    let w = this.clients.get(client);
    if (!w || now - w.since >= windowMs) {
      if (this.clients.size >= globalMaxFailures) this.dropExpired(now);
      w = { count: 0, since: now };
      this.clients.set(client, w);
    }
    w.count++;
    return { clientBlocked: w.count === maxFailures, globalBlocked: this.global.count === globalMaxFailures };
  }

  /** A right login clears the client's failures (not the global count: a guesser's partner may succeed once). */
  succeeded(client: string): void {
    this.clients.delete(client);
  }

  /** Clients tracked now (for tests of the bound). */
  get trackedClients(): number {
    return this.clients.size;
  }

  private dropExpired(now: number): void {
    for (const [client, w] of this.clients) if (now - w.since >= this.options.windowMs) this.clients.delete(client);
  }
}

/**
 * The throttling key of a peer address: an IPv4 address as is (also when IPv4-mapped, "::ffff:10.0.0.1"), an IPv6
 * address by its /64, which one host usually controls whole. Proxy headers (X-Forwarded-For) are not trusted: behind
 * a reverse proxy every client shares the proxy's key, and the proxy should throttle itself.
 */
export function clientKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped) return mapped[1]!;
  if (isIP(remoteAddress) !== 6) return remoteAddress;
  return `${expandIPv6(remoteAddress).slice(0, 4).join(':')}::/64`;
}

/** The first four hextets of an IPv6 address, expanded ("2001:db8::1" → 2001:db8:0:0). */
function expandIPv6(address: string): string[] {
  // A trailing dotted quad is the last 32 bits: for the prefix only its width (two hextets) matters.
  const plain = address.split('%')[0]!.toLowerCase().replace(/\d+\.\d+\.\d+\.\d+$/, '0:0');
  const [head = '', tail] = plain.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...fill, ...right].map((p) => p.replace(/^0+(?=.)/, ''));
}
