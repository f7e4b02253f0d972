/**
 * The review console at /console, for analysts and supervisors: sign in with an API token, the queue with its
 * filters, a case page (the decision and its reasons, the user's and the card's recent history, the trail, the
 * actions), the approvals waiting for a supervisor, and the audit trail of every case.
 *
 * Server-rendered with Hono's JSX, enhanced with htmx (boosted links and forms, a queue that refreshes itself): no
 * build step, no client state, and every page works as plain HTML too. Each page and action is a request to the
 * JSON API (src/api/routes.ts) with the signed-in user's token, in process: the roles, the 403/404/409 answers, the
 * throttles and the audit trail are the API's, so the console cannot do what the API would refuse.
 *
 * The token is kept in an HttpOnly, SameSite=Strict cookie scoped to /console (Secure over HTTPS and in production),
 * and checked by the API on every request, so a revoked user is signed out at once. A POST whose Origin is another
 * site's is refused.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import { DateTime } from 'luxon';
import type { ArchivedDecision } from '../archive/archived-decisions.ts';
import type { CaseActionEntry } from '../cases/archived-cases.ts';
import type { CaseView } from '../cases/case.ts';

type Env = { Bindings: HttpBindings };

export const CONSOLE_PATH = '/console';
const COOKIE = 'riskmon_console';
/** A console sign-in lasts a working day; the token itself stays valid until revoked. */
const SESSION_SECONDS = 10 * 3_600;

const htmx = readFileSync(createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js'), 'utf8');

export interface ConsoleOptions {
  /** The JSON API app (mounted at /api): every page asks it, with the user's token. */
  api: Hono<Env>;
  /** Times are shown in this zone (the configured calendar zone). */
  timezone: string;
  /** Mark the cookie Secure even over plain HTTP (production, behind a TLS proxy). */
  secureCookies: boolean;
}

interface Me {
  name: string;
  role: 'analyst' | 'supervisor' | 'admin';
}

interface CasePageData {
  case: CaseView;
  decision: ArchivedDecision | null;
  history: { user: ArchivedDecision[]; card: ArchivedDecision[] };
  actions: CaseActionEntry[];
}

interface ApiAnswer<T> {
  status: number;
  body: T & { error?: string };
}

const STATUS_FILTERS = [
  ['open', 'Open'],
  ['locked', 'Held by an analyst'],
  ['pending_approval', 'Waiting for approval'],
  ['closed', 'Closed'],
] as const;

export function createConsole(options: ConsoleOptions): Hono<Env> {
  const app = new Hono<Env>();
  const zone = options.timezone;

  /** The API's answer to this user's request. */
  async function api<T>(c: Context<Env>, method: 'GET' | 'POST', path: string, body?: unknown, token = getCookie(c, COOKIE)): Promise<ApiAnswer<T>> {
    const res = await options.api.request(
      path,
      {
        method,
        headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      },
      c.env,
    );
    return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as T & { error?: string } };
  }

  /** Who is signed in, or a redirect to the sign-in page (no cookie, or a token the API no longer takes). */
  async function signedIn(c: Context<Env>): Promise<Me | Response> {
    if (!getCookie(c, COOKIE)) return c.redirect(`${CONSOLE_PATH}/login`);
    const me = await api<Me>(c, 'GET', '/me');
    if (me.status === 401) {
      deleteCookie(c, COOKIE, { path: CONSOLE_PATH });
      return c.redirect(`${CONSOLE_PATH}/login?ended=1`);
    }
    if (me.status !== 200) return c.html(<Page title="Unavailable"><Banner kind="error">{me.body.error ?? `the API answered ${me.status}`}</Banner></Page>, 503);
    return me.body;
  }

  // Another site's form must not act with the analyst's cookie (SameSite=Strict already stops most browsers). By
  // host, not origin: behind a TLS proxy the browser's https origin reaches us as plain http.
  app.use('*', async (c, next) => {
    if (c.req.method === 'POST') {
      const origin = c.req.header('origin');
      const host = c.req.header('x-forwarded-host') ?? c.req.header('host');
      if (origin && originHost(origin) !== host) return c.text('cross-site request refused', 403);
    }
    return next();
  });

  app.get('/static/htmx.min.js', (c) => c.body(htmx, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=86400' }));

  app.get('/login', (c) =>
    c.html(<SignIn notice={c.req.query('ended') ? 'Your session ended (signed out, or the token was revoked): sign in again.' : undefined} />),
  );

  app.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    const me = await api<Me>(c, 'GET', '/me', undefined, token);
    if (me.status !== 200) return c.html(<SignIn error={me.body.error ?? 'sign-in failed'} />, me.status === 429 ? 429 : 401);
    const secure = options.secureCookies || new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
    setCookie(c, COOKIE, token, { path: CONSOLE_PATH, httpOnly: true, sameSite: 'Strict', secure, maxAge: SESSION_SECONDS });
    return c.redirect(CONSOLE_PATH);
  });

  app.post('/logout', (c) => {
    deleteCookie(c, COOKIE, { path: CONSOLE_PATH });
    return c.redirect(`${CONSOLE_PATH}/login`);
  });

  app.get('/', async (c) => {
    const me = await signedIn(c);
    if (me instanceof Response) return me;
    const status = STATUS_FILTERS.some(([s]) => s === c.req.query('status')) ? c.req.query('status')! : 'open';
    const list = await api<{ cases: CaseView[] }>(c, 'GET', `/cases?status=${status}&limit=200`);
    const notice = c.req.query('notice') === 'none' ? 'No case is open: the queue is empty.' : undefined;
    return c.html(
      <Page title="Review queue" me={me}>
        {notice && <Banner kind="info">{notice}</Banner>}
        <div class="bar">
          <nav class="filters" aria-label="status">
            {STATUS_FILTERS.map(([s, label]) => (
              <a href={`${CONSOLE_PATH}?status=${s}`} class={s === status ? 'current' : undefined}>
                {label}
              </a>
            ))}
          </nav>
          <form method="post" action={`${CONSOLE_PATH}/next`}>
            <button type="submit" class="primary">
              Take the next case
            </button>
          </form>
        </div>
        {list.status === 200 ? (
          <div hx-get={`${CONSOLE_PATH}/?status=${status}`} hx-trigger="every 15s" hx-select="#cases" hx-target="#cases" hx-swap="outerHTML">
            <CaseTable cases={list.body.cases} zone={zone} />
          </div>
        ) : (
          <Banner kind="error">{list.body.error ?? `the API answered ${list.status}`}</Banner>
        )}
      </Page>,
    );
  });

  app.post('/next', async (c) => {
    const me = await signedIn(c);
    if (me instanceof Response) return me;
    const taken = await api<CaseView>(c, 'POST', '/cases/next');
    if (taken.status === 204) return c.redirect(`${CONSOLE_PATH}?notice=none`);
    if (taken.status !== 200) return c.html(<Page title="Review queue" me={me}><Banner kind="error">{taken.body.error}</Banner></Page>, taken.status as 403);
    return c.redirect(caseHref(taken.body.id));
  });

  app.get('/approvals', async (c) => {
    const me = await signedIn(c);
    if (me instanceof Response) return me;
    const list = await api<{ cases: CaseView[] }>(c, 'GET', '/cases?status=pending_approval&limit=200');
    return c.html(
      <Page title="Releases waiting for approval" me={me}>
        <p class="hint">A release above the four-eyes amount waits here until a supervisor other than the releaser approves it; its money stays held.</p>
        {list.status === 200 ? <CaseTable cases={list.body.cases} zone={zone} /> : <Banner kind="error">{list.body.error}</Banner>}
      </Page>,
    );
  });

  app.get('/audit', async (c) => {
    const me = await signedIn(c);
    if (me instanceof Response) return me;
    const actor = c.req.query('actor')?.trim();
    const trail = await api<{ actions: CaseActionEntry[] }>(c, 'GET', `/case-actions?limit=500${actor ? `&actor=${encodeURIComponent(actor)}` : ''}`);
    return c.html(
      <Page title="Audit trail" me={me}>
        <form method="get" action={`${CONSOLE_PATH}/audit`} class="bar">
          <label>
            By <input name="actor" value={actor ?? ''} placeholder="anyone" />
          </label>
          <button type="submit">Filter</button>
        </form>
        {trail.status === 200 ? <Trail actions={trail.body.actions} zone={zone} withCase /> : <Banner kind="error">{trail.body.error}</Banner>}
      </Page>,
      trail.status === 200 ? 200 : (trail.status as 403),
    );
  });

  app.get('/cases/:id', async (c) => {
    const me = await signedIn(c);
    if (me instanceof Response) return me;
    return caseResponse(c, me, c.req.param('id'));
  });

  for (const action of ['release', 'cancel', 'approve'] as const) {
    app.post(`/cases/:id/${action}`, async (c) => {
      const me = await signedIn(c);
      if (me instanceof Response) return me;
      const id = c.req.param('id');
      const form = await c.req.parseBody();
      const text = (k: string) => (typeof form[k] === 'string' ? (form[k] as string) : '');
      const answer = await api<CaseView>(c, 'POST', `/cases/${encodeURIComponent(id)}/${action}`, action === 'cancel' ? { reason: text('reason') } : { note: text('note') });
      if (answer.status === 200) return c.redirect(`${caseHref(id)}?done=${action}`);
      return caseResponse(c, me, id, { error: answer.body.error ?? `the API answered ${answer.status}`, status: answer.status });
    });
  }

  async function caseResponse(c: Context<Env>, me: Me, id: string, failed?: { error: string; status: number }): Promise<Response> {
    const page = await api<CasePageData>(c, 'GET', `/cases/${encodeURIComponent(id)}`);
    if (page.status !== 200) {
      return c.html(<Page title="Case" me={me}><Banner kind="error">{page.body.error ?? `the API answered ${page.status}`}</Banner></Page>, page.status as 404);
    }
    const done = c.req.query('done');
    const notice = done === 'release' ? (page.body.case.status === 'pending_approval' ? 'Released: above the four-eyes amount, it waits for a supervisor\'s approval.' : 'Released: paid at its T+1 instant or the next settlement run, whichever is later.') : done === 'cancel' ? 'Cancelled: it is never paid (or reversed), and its credit is given back.' : done === 'approve' ? 'Approved: paid at its T+1 instant or the next settlement run.' : undefined;
    return c.html(<CasePage me={me} data={page.body} zone={zone} notice={notice} error={failed?.error} />, (failed ? failed.status : 200) as 200);
  }

  return app;
}

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function caseHref(id: string): string {
  return `${CONSOLE_PATH}/cases/${encodeURIComponent(id)}`;
}

const cny = (fen: number) => `${(fen / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} CNY`;
const when = (iso: string | null, zone: string) => (iso ? DateTime.fromISO(iso, { zone }).toFormat('yyyy-MM-dd HH:mm:ss') : '–');

const HTMX_CONFIG = JSON.stringify({ responseHandling: [{ code: '204', swap: false }, { code: '...', swap: true }] });

const STYLE = `
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{display:flex;align-items:center;gap:1.5rem;padding:.6rem 1.5rem;background:#1f3a5f;color:#fff}
header a{color:#dbe6f5;text-decoration:none}header a:hover{color:#fff}header .who{margin-left:auto;display:flex;gap:.8rem;align-items:center}
header strong{font-size:1.05rem}main{padding:1.2rem 1.5rem;max-width:1200px}
h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e3e6eb;vertical-align:top}th{background:#eef1f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:flex;gap:1rem;align-items:center;justify-content:space-between;margin-bottom:1rem}
.filters a{margin-right:.9rem;color:#1f3a5f}.filters a.current{font-weight:700;text-decoration:underline}
button{font:inherit;padding:.35rem .9rem;border:1px solid #9aa7b8;border-radius:4px;background:#fff;cursor:pointer}
button.primary{background:#1f3a5f;color:#fff;border-color:#1f3a5f}button.danger{background:#a3262a;color:#fff;border-color:#a3262a}
.banner{padding:.6rem .9rem;border-radius:4px;margin-bottom:1rem}.banner.error{background:#fbe3e3;color:#7a1b1e}.banner.info{background:#e3eefb;color:#173a63}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:.4rem 1.5rem;background:#fff;padding:.8rem 1rem;box-shadow:0 1px 2px #0001}
.grid .label{display:block;color:#5b6676;font-size:.85rem}
.actions{display:flex;gap:1.5rem;flex-wrap:wrap;margin-top:1rem}.actions form{background:#fff;padding:.8rem 1rem;box-shadow:0 1px 2px #0001;flex:1;min-width:280px}
textarea{width:100%;box-sizing:border-box;min-height:3.5rem;font:inherit}
.status{padding:.1rem .45rem;border-radius:3px;background:#e6e9ee;font-size:.85rem}.status.closed{background:#dfeede}.status.pending_approval{background:#fbeed0}.status.locked{background:#e3eefb}
.hint{color:#5b6676}.signin{max-width:420px;margin:4rem auto;background:#fff;padding:1.5rem;box-shadow:0 1px 3px #0002}
.signin input{width:100%;box-sizing:border-box;padding:.4rem;font:inherit;margin:.4rem 0 1rem}
`;

const Page: FC<PropsWithChildren<{ title: string; me?: Me }>> = ({ title, me, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${title} · riskmon console`}</title>
      {/* Refusals (403, 409, 400) are pages too: htmx shows them instead of dropping them. */}
      <meta name="htmx-config" content={HTMX_CONFIG} />
      <style>{STYLE}</style>
      <script src={`${CONSOLE_PATH}/static/htmx.min.js`} defer></script>
    </head>
    <body hx-boost="true">
      <header>
        <strong>riskmon · Fenfu review</strong>
        {me && (
          <>
            <a href={CONSOLE_PATH}>Queue</a>
            <a href={`${CONSOLE_PATH}/approvals`}>Approvals</a>
            {me.role !== 'analyst' && <a href={`${CONSOLE_PATH}/audit`}>Audit trail</a>}
            <span class="who">
              <span>
                {me.name} ({me.role})
              </span>
              <form method="post" action={`${CONSOLE_PATH}/logout`}>
                <button type="submit">Sign out</button>
              </form>
            </span>
          </>
        )}
      </header>
      <main>
        <h1>{title}</h1>
        {children}
      </main>
    </body>
  </html>
);

const Banner: FC<PropsWithChildren<{ kind: 'error' | 'info' }>> = ({ kind, children }) => (
  <div class={`banner ${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
    {children}
  </div>
);

const SignIn: FC<{ error?: string; notice?: string }> = ({ error, notice }) => (
  <Page title="Sign in">
    <form method="post" action={`${CONSOLE_PATH}/login`} class="signin" hx-boost="false">
      {error && <Banner kind="error">{error}</Banner>}
      {notice && <Banner kind="info">{notice}</Banner>}
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off" required placeholder="rmk_…" />
      <p class="hint">Your token from <code>npm run users -- add</code>. Analysts take, release and cancel cases; supervisors also approve releases above four eyes.</p>
      <button type="submit" class="primary">
        Sign in
      </button>
    </form>
  </Page>
);

const StatusTag: FC<{ status: string }> = ({ status }) => <span class={`status ${status}`}>{status.replace('_', ' ')}</span>;

const CaseTable: FC<{ cases: CaseView[]; zone: string }> = ({ cases, zone }) =>
  cases.length === 0 ? (
    <p id="cases" class="hint">
      No cases here.
    </p>
  ) : (
    <table id="cases">
      <thead>
        <tr>
          <th>Case</th>
          <th>Opened by</th>
          <th class="num">Amount</th>
          <th>User</th>
          <th>Merchant</th>
          <th>Deadline</th>
          <th>Status</th>
          <th>Held by / outcome</th>
        </tr>
      </thead>
      <tbody>
        {cases.map((k) => (
          <tr>
            <td>
              <a href={caseHref(k.id)}>{k.id}</a>
            </td>
            <td>{k.opened === 'complaint' ? 'complaint' : k.rules.join(', ') || 'review'}</td>
            <td class="num">{cny(k.amountFen)}</td>
            <td>{k.userId}</td>
            <td>{k.merchantId}</td>
            <td>
              {when(k.deadline, zone)}
              {k.overdue && ' (past)'}
            </td>
            <td>
              <StatusTag status={k.status} />
              {k.frozen && ' frozen'}
            </td>
            <td>{k.outcome ? `${k.outcome.replace('_', ' ')} by ${k.closedBy}` : (k.lockedBy ?? (k.releasedBy ? `released by ${k.releasedBy}` : ''))}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );

const Field: FC<{ label: string; children: Child }> = ({ label, children }) => (
  <div>
    <span class="label">{label}</span>
    {children}
  </div>
);

const History: FC<{ decisions: ArchivedDecision[]; zone: string }> = ({ decisions, zone }) =>
  decisions.length === 0 ? (
    <p class="hint">None in the 30 days before it.</p>
  ) : (
    <table>
      <thead>
        <tr>
          <th>Charge</th>
          <th>Occurred</th>
          <th class="num">Amount</th>
          <th>Merchant</th>
          <th>Card</th>
          <th>Outcome</th>
          <th>Rules</th>
        </tr>
      </thead>
      <tbody>
        {decisions.map((d) => (
          <tr>
            <td>{d.eventId}</td>
            <td>{when(d.occurredAt, zone)}</td>
            <td class="num">{cny(d.amountFen)}</td>
            <td>{d.merchantId}</td>
            <td>****{d.cardLast4}</td>
            <td>{d.outcome}</td>
            <td>{(d.rules ?? []).join(', ')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );

const Trail: FC<{ actions: CaseActionEntry[]; zone: string; withCase?: boolean }> = ({ actions, zone, withCase }) =>
  actions.length === 0 ? (
    <p class="hint">No actions archived yet (the archive follows within a second or so).</p>
  ) : (
    <table class="trail">
      <thead>
        <tr>
          <th>When</th>
          {withCase && <th>Case</th>}
          <th>Action</th>
          <th>By</th>
          <th>Note</th>
        </tr>
      </thead>
      <tbody>
        {actions.map((a) => (
          <tr>
            <td>{when(a.at, zone)}</td>
            {withCase && (
              <td>
                <a href={caseHref(a.caseId)}>{a.caseId}</a>
              </td>
            )}
            <td>{a.action.replace('_', ' ')}</td>
            <td>{a.actor}</td>
            <td>{a.note}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );

const CasePage: FC<{ me: Me; data: CasePageData; zone: string; notice?: string; error?: string }> = ({ me, data, zone, notice, error }) => {
  const k = data.case;
  const d = data.decision;
  const open = k.status === 'open' || k.status === 'locked';
  const supervisor = me.role !== 'analyst';
  return (
    <Page title={`Case ${k.id}`} me={me}>
      {error && <Banner kind="error">{error}</Banner>}
      {notice && <Banner kind="info">{notice}</Banner>}
      <div class="grid">
        <Field label="Status">
          <StatusTag status={k.status} />
          {k.frozen && ' frozen by a complaint'}
          {k.overdue && ' · past its deadline'}
        </Field>
        <Field label="Charge">{k.chargeId}</Field>
        <Field label="Amount">{cny(k.amountFen)}</Field>
        <Field label="User">{k.userId}</Field>
        <Field label="Merchant">{k.merchantId}</Field>
        <Field label="Opened">{`${when(k.openedAt, zone)} (${k.opened})`}</Field>
        <Field label="Deadline">{`${when(k.deadline, zone)}${k.extensions ? ` (extended ${k.extensions}×)` : ''}`}</Field>
        <Field label="Money">{k.paid ? 'paid to the merchant before the case (a cancel books a reversal)' : 'held until decided'}</Field>
        {k.lockedBy && <Field label="Held by">{`${k.lockedBy} until ${when(k.lockedUntil, zone)}`}</Field>}
        {k.releasedBy && <Field label="Release asked by">{`${k.releasedBy}${k.releaseNote ? `: ${k.releaseNote}` : ''}`}</Field>}
        {k.outcome && <Field label="Outcome">{`${k.outcome.replace('_', ' ')} by ${k.closedBy} at ${when(k.closedAt, zone)}${k.approvedBy ? ` (approved by ${k.approvedBy})` : ''}`}</Field>}
        {k.cancelledFen !== null && <Field label="Given back">{`${cny(k.cancelledFen)}, credit ${cny(k.creditGivenBackFen ?? 0)}${k.reversed ? ', reversed in the merchant ledger' : ''}`}</Field>}
        {k.complaint && <Field label="Complaint">{`${k.complaint.reason} (${k.complaint.eventId}, ${when(k.complaint.at, zone)})`}</Field>}
      </div>

      <h2>Decision</h2>
      {d ? (
        <div class="grid">
          <Field label="Outcome">{d.outcome}</Field>
          <Field label="Occurred">{when(d.occurredAt, zone)}</Field>
          <Field label="Card">****{d.cardLast4}</Field>
          <Field label="Rules">{(d.rules ?? []).join(', ') || 'none'}</Field>
          <Field label="Reasons">
            <ul class="reasons">
              {(d.reasons ?? []).map((r) => (
                <li>{r}</li>
              ))}
            </ul>
          </Field>
        </div>
      ) : (
        <p class="hint">The decision is no longer kept (past its retention).</p>
      )}

      {open && (
        <div class="actions">
          <form method="post" action={`${caseHref(k.id)}/release`}>
            <h2>Release</h2>
            <textarea name="note" placeholder="Why it may be paid (optional)" aria-label="release note"></textarea>
            <button type="submit" class="primary">
              Release
            </button>
          </form>
          <form method="post" action={`${caseHref(k.id)}/cancel`}>
            <h2>Cancel</h2>
            <textarea name="reason" placeholder="Why it must not be paid (required)" aria-label="cancel reason" required></textarea>
            <button type="submit" class="danger">
              Cancel the charge
            </button>
          </form>
        </div>
      )}
      {k.status === 'pending_approval' && (
        <div class="actions">
          {supervisor ? (
            <>
              <form method="post" action={`${caseHref(k.id)}/approve`}>
                <h2>Approve the release</h2>
                <textarea name="note" placeholder="Note (optional)" aria-label="approval note"></textarea>
                <button type="submit" class="primary">
                  Approve
                </button>
              </form>
              <form method="post" action={`${caseHref(k.id)}/cancel`}>
                <h2>Refuse: cancel</h2>
                <textarea name="reason" placeholder="Why it must not be paid (required)" aria-label="cancel reason" required></textarea>
                <button type="submit" class="danger">
                  Cancel the charge
                </button>
              </form>
            </>
          ) : (
            <p class="hint">Released by {k.releasedBy}: waits for a supervisor other than the releaser.</p>
          )}
        </div>
      )}

      <h2>The user's recent charges</h2>
      <History decisions={data.history.user} zone={zone} />
      <h2>The card's recent charges</h2>
      <History decisions={data.history.card} zone={zone} />
      <h2>Trail</h2>
      <p class="hint">From the archive, which follows each action within about a second.</p>
      <Trail actions={data.actions} zone={zone} />
    </Page>
  );
};
