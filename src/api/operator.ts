/**
 * Who runs a governed command (rules publish/approve/rollback, list changes): the admin whose API token is in
 * RISKMON_TOKEN (npm run users -- add <name> --role admin). The name recorded with the change is the token's, never
 * one typed on the command line; each attempt, refused ones too, is written to the audit trail.
 */
import type { Settings } from '../config.ts';
import { openArchiveDb } from '../archive/database.ts';
import { migrateArchive } from '../archive/migrate.ts';
import { maskCardNumbers } from '../events/card.ts';
import { AuditLog } from './audit.ts';
import { ApiUsers, atLeast, type Role } from './users.ts';

export class OperatorError extends Error {
  override name = 'OperatorError';
}

export interface Operator {
  name: string;
  role: Role;
  /** Records how the command ended (status as HTTP would: 200 done, 409 refused) and closes the connection. */
  done(status: number, rows?: number): Promise<void>;
}

export async function operatorFromToken(settings: Settings, command: string, filters: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<Operator> {
  const token = env.RISKMON_TOKEN;
  const db = await openArchiveDb({ databaseUrl: settings.databaseUrl, dataDir: settings.config.archive.dataDir });
  const audit = new AuditLog(db, settings.config.namespace);
  const route = `cli: ${command}`;
  const safe = Object.fromEntries(Object.entries(filters).map(([k, v]) => [k, maskCardNumbers(String(v)).slice(0, 256)]));
  const refuse = async (status: number, message: string, user?: { name: string; role: Role }): Promise<never> => {
    await audit.record({ user: user?.name ?? null, role: user?.role ?? null, client: 'cli', method: 'RUN', route, filters: safe, rows: 0, status });
    await db.close();
    throw new OperatorError(message);
  };
  try {
    await migrateArchive(db);
  } catch (e) {
    await db.close();
    throw e;
  }
  if (!token) return refuse(401, `${command} needs an admin's API token in RISKMON_TOKEN (npm run users -- add <name> --role admin prints one)`);
  const user = await new ApiUsers(db).authenticate(token);
  if (!user) return refuse(401, 'RISKMON_TOKEN is unknown or revoked');
  if (!atLeast(user.role, 'admin')) return refuse(403, `${command} needs the admin role; ${user.name} is ${user.role}`, user);
  return {
    ...user,
    async done(status, rows = 1) {
      try {
        await audit.record({ user: user.name, role: user.role, client: 'cli', method: 'RUN', route, filters: safe, rows, status });
      } finally {
        await db.close();
      }
    },
  };
}
