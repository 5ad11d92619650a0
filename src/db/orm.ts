// MikroORM set-up. Entities are listed explicitly (no folder discovery) and migrations are classes in code, so the
// same start-up works from a source checkout, a container and a test without a build step or path globbing.
import { MikroORM, type Options } from "@mikro-orm/postgresql";
import { Migrator } from "@mikro-orm/migrations";
import { allEntities } from "./entities/index.ts";
import { migrations } from "./migrations/index.ts";

export type Orm = MikroORM;

export function ormOptions(databaseUrl: string, poolMax = 20): Options {
  return {
    clientUrl: databaseUrl,
    entities: allEntities,
    extensions: [Migrator],
    migrations: { migrationsList: migrations, snapshot: false, transactional: true, allOrNothing: true },
    pool: { min: 0, max: poolMax },
    // Entities are defined with defineEntity, so there is no reflection to do at start-up.
    discovery: { warnWhenNoEntities: true },
    // Database functions (kindling_batch_check, migration 0006) live in migrations, not in entity metadata: the
    // schema diff must not drop them.
    schemaGenerator: { ignoreRoutines: true },
    debug: false,
    allowGlobalContext: false,
  };
}

export async function createOrm(databaseUrl: string, poolMax?: number): Promise<Orm> {
  return MikroORM.init(ormOptions(databaseUrl, poolMax));
}

/** Applies every committed migration not yet applied; returns their names. */
export async function migrate(orm: Orm): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((m) => m.name);
}
