// Every migration, in order. Listed in code (not discovered from files) so start-up needs no globbing or build step.
import type { Migration } from "@mikro-orm/migrations";
import { Migration0001Initial } from "./0001-initial.migration.ts";

type MigrationClass = new (...args: ConstructorParameters<typeof Migration>) => Migration;

export const migrations: { name: string; class: MigrationClass }[] = [{ name: "0001_initial", class: Migration0001Initial }];
