/**
 * npm run users -- add <name> --role analyst|supervisor|admin | list | revoke <name>
 * API users (src/api/users.ts), kept in the archive's database (DATABASE_URL, or the embedded one).
 */
import { loadSettings } from '../src/config.ts';
import { CONFIG_OPTION, runCommand, UsageError } from '../src/cli.ts';
import { openArchiveDb } from '../src/archive/database.ts';
import { migrateArchive } from '../src/archive/migrate.ts';
import { ApiUsers, ROLES } from '../src/api/users.ts';

runCommand(
  {
    name: 'users',
    summary: 'API users and their roles: add one (its token is printed once, only its hash is kept), list them, revoke one.',
    usage: ['add <name> --role analyst|supervisor|admin [options]', 'list [options]', 'revoke <name> [options]'],
    positionals: true,
    options: {
      config: CONFIG_OPTION,
      role: { type: 'string', arg: '<role>', help: `add: ${ROLES.join(', ')} (analysts read one decision; supervisors query all and read the audit trail; admins too)` },
      json: { type: 'boolean', help: 'print JSON' },
    },
    notes: ['The token goes in `Authorization: Bearer <token>` on /api. Users live in the archive\'s database: DATABASE_URL, or the embedded one (stop the service first, which owns it).'],
    examples: ['npm run users -- add li.na --role supervisor', 'npm run users -- list', 'npm run users -- revoke li.na'],
  },
  async ({ values, positionals }) => {
    const [command, name, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError('one user name at a time');
    if (command !== 'add' && command !== 'list' && command !== 'revoke') throw new UsageError('expected: add, list or revoke');
    if (command !== 'list' && !name) throw new UsageError(`${command} takes a user name`);
    if (command === 'add' && !values.role) throw new UsageError(`--role is required: ${ROLES.join(', ')}`);
    const settings = loadSettings({ configFile: values.config });
    const db = await openArchiveDb({ databaseUrl: settings.databaseUrl, dataDir: settings.config.archive.dataDir });
    try {
      await migrateArchive(db);
      const users = new ApiUsers(db);
      if (command === 'add') {
        const { user, token } = await users.add(name!, values.role!);
        if (values.json) process.stdout.write(JSON.stringify({ ...user, token }) + '\n');
        else process.stdout.write(`user ${user.name} (${user.role}) added. Its token, shown this once (only its hash is kept):\n${token}\n`);
      } else if (command === 'list') {
        const list = await users.list();
        if (values.json) process.stdout.write(JSON.stringify(list) + '\n');
        else for (const u of list) process.stdout.write(`${u.name.padEnd(24)} ${u.role.padEnd(10)} added ${u.createdAt}${u.revokedAt ? `, revoked ${u.revokedAt}` : ''}\n`);
      } else {
        await users.revoke(name!);
        process.stdout.write(`user ${name} revoked: its token no longer works\n`);
      }
    } finally {
      await db.close();
    }
  },
);
