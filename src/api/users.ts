/**
 * API users (riskmon.api_users): a name, a role and the SHA-256 of a random token. `npm run users -- add` prints the
 * token once; only its hash is kept, so a leaked table gives no token. A revoked user's token stops working at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ArchiveDb } from '../archive/database.ts';

export const ROLES = ['analyst', 'supervisor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Each role can do what the roles below it can. */
export function atLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

export interface ApiUser {
  name: string;
  role: Role;
  createdAt: string;
  revokedAt: string | null;
}

export class UserError extends Error {
  override name = 'UserError';
}

/** `rmk_` and 43 characters of base64url: 256 random bits. */
const TOKEN = /^rmk_[A-Za-z0-9_-]{43}$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class ApiUsers {
  constructor(private readonly db: ArchiveDb) {}

  /** Adds a user and returns their token (the only time it is seen). */
  async add(name: string, role: string, now = Date.now()): Promise<{ user: ApiUser; token: string }> {
    if (!NAME.test(name)) throw new UserError(`a user name is 1–64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit: ${JSON.stringify(name)}`);
    if (!(ROLES as readonly string[]).includes(role)) throw new UserError(`--role must be one of ${ROLES.join(', ')}, not ${JSON.stringify(role)}`);
    const token = `rmk_${randomBytes(32).toString('base64url')}`;
    try {
      await this.db.query(`INSERT INTO riskmon.api_users (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4)`, [name, role, tokenHash(token), new Date(now)]);
    } catch (e) {
      if ((e as { code?: string }).code === '23505') throw new UserError(`user ${name} exists already (revoke it first to give the name a new token)`);
      if ((e as { code?: string }).code === '23514') throw new UserError(`invalid user ${JSON.stringify(name)}`);
      throw e;
    }
    return { user: { name, role: role as Role, createdAt: new Date(now).toISOString(), revokedAt: null }, token };
  }

  async list(): Promise<ApiUser[]> {
    const r = await this.db.query<{ name: string; role: Role; created_at: Date; revoked_at: Date | null }>(`SELECT name, role, created_at, revoked_at FROM riskmon.api_users ORDER BY name, created_at`);
    return r.rows.map((u) => ({ name: u.name, role: u.role, createdAt: u.created_at.toISOString(), revokedAt: u.revoked_at?.toISOString() ?? null }));
  }

  /** Revokes a user's token; the name can then be added again with a new one. */
  async revoke(name: string, now = Date.now()): Promise<void> {
    const r = await this.db.query(`UPDATE riskmon.api_users SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, [name, new Date(now)]);
    if (r.rowCount === 0) throw new UserError(`no active user ${JSON.stringify(name)}`);
  }

  /** The active user a bearer token belongs to, or undefined. */
  async authenticate(token: string): Promise<{ name: string; role: Role } | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const r = await this.db.query<{ name: string; role: Role }>(`SELECT name, role FROM riskmon.api_users WHERE token_hash = $1 AND revoked_at IS NULL`, [tokenHash(token)]);
    return r.rows[0];
  }
}
