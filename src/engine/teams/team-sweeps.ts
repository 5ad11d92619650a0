// Window close for team streaks (issue 14, part 3): the team half of the definition sweeper's sweeps
// (window-sweeps.ts calls these for team definitions). A team row carries its chain's deadlines (migration 0015,
// written by every saveTeam), so due teams are found by index, a page at a time by a (due time, id) keyset as for
// member streaks (migration 0013). Teams are few beside members (2 to 100 members each) and each one's state
// needs the domain (its roster, its members' open windows), so every due team goes through the domain — as the
// member sweep's ADVANCE pages do — instead of a set-based statement.
//
// Idempotent under racing sweepers: a page is found without locks, then its teams are locked (FOR UPDATE) and
// re-checked against the due condition, which a sweep (or recording) that got there first no longer meets: its
// save moved break_at, or at_risk_notified_window marks the window. Every event carries the dedupe key the lazy
// path (a read or write advancing the team) would write, so a team finalised by either is told once.
//
// Row locks: a sweep locks only team rows of one definition, one transaction per page, in id order. Recording
// locks a member's streak row and then their team's row; a sweep locks no member row, so they cannot deadlock.
import type { Pool, PoolClient } from "pg";
import { advanceTeam, teamAtRiskRecipients, type TeamConfig, type TeamRule } from "../../domain/team-streak.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import { externalIds, loadTeam, persistTeamTransition, teamEventOwnerKey } from "./team-streaks.ts";
import { insertEvents } from "../ingest/streak-persistence.ts";
import type { PlannedEvent } from "../ingest/streak-events.ts";
import { inTransaction } from "../transaction.ts";

export interface TeamSweepOptions {
  /** Teams per page (one transaction). */
  readonly pageSize?: number;
  /** Called after every page with the running total (activities heartbeat from it). */
  readonly onPage?: (done: number) => void;
}

const DEFAULT_PAGE = 200;

/**
 * Runs `each` over the definition's teams whose `due` column is at or before `asOf`, a page at a time in (due, id)
 * order. `recheck` is the SQL condition (on `t`, parameter $4 = asOf) a team must still meet once locked.
 */
async function sweepTeams(
  pool: Pool,
  def: CatalogDefinition,
  asOf: number,
  due: "break_at" | "at_risk_at",
  recheck: string,
  options: TeamSweepOptions,
  each: (client: PoolClient, teamId: string, row: { break_window_key: string | null; window_close_at: Date | null; at_risk_at: Date | null }) => Promise<boolean>,
): Promise<number> {
  let total = 0;
  let after = { at: "-infinity", id: "00000000-0000-0000-0000-000000000000" };
  for (;;) {
    // One range read of the (definition_id, due, id) index (migration 0015).
    const { rows: page } = await pool.query<{ id: string; at: string }>(
      `select t.id, t.${due}::text as at from team t
        where t.definition_id = $1 and t.${due} <= $2 and (t.${due}, t.id) > ($3::timestamptz, $4::uuid)
        order by t.${due}, t.id limit $5`,
      [def.id, new Date(asOf), after.at, after.id, options.pageSize ?? DEFAULT_PAGE],
    );
    if (page.length === 0) return total;
    const n = await inTransaction(pool, async (client) => {
      const { rows } = await client.query<{ id: string; break_window_key: string | null; window_close_at: Date | null; at_risk_at: Date | null }>(
        `select t.id, t.break_window_key, t.window_close_at, t.at_risk_at from team t
          where t.id = any($1::uuid[]) and t.tenant_id = $2 and t.definition_id = $3 and ${recheck}
          order by t.id for update`,
        [page.map((r) => r.id), def.tenantId, def.id, new Date(asOf)],
      );
      let done = 0;
      for (const row of rows) if (await each(client, row.id, row)) done++;
      return done;
    });
    const last = page[page.length - 1]!;
    after = { at: last.at, id: last.id };
    total += n;
    if (n > 0) options.onPage?.(total);
  }
}

/**
 * Finalises the definition's teams whose window closed (plus grace) without counting: a team freeze is used
 * (team freeze policy) or the team's streak breaks, exactly once, with the team's streak.* events to each roster
 * member and the finalised windows in team_window; held windows settle. Returns teams advanced.
 */
export async function sweepTeamBreaks(pool: Pool, def: CatalogDefinition, rule: TeamRule, asOf: number, options: TeamSweepOptions = {}): Promise<number> {
  const opts = { pausedIntervals: def.pauses };
  return sweepTeams(pool, def, asOf, "break_at", "t.break_at <= $4", options, async (client, teamId) => {
    const team = (await loadTeam(client, def.tenantId, teamId, def, false))!;
    const config: TeamConfig = { rule, memberships: team.config.memberships };
    const next = advanceTeam(def.rules, config, team.state, asOf, opts);
    await persistTeamTransition(client, def, def.tenantId, teamId, config, next.state, next.effects, asOf, next);
    return true;
  });
}

/**
 * Sends the team's at-risk reminders: once per team and window, one streak.at_risk to each roster member who has
 * not satisfied the team's open window yet (teamAtRiskRecipients), naming the team. Returns reminders sent.
 */
export async function sweepTeamAtRisk(pool: Pool, def: CatalogDefinition, rule: TeamRule, asOf: number, options: TeamSweepOptions = {}): Promise<number> {
  const opts = { pausedIntervals: def.pauses };
  let sent = 0;
  await sweepTeams(
    pool, def, asOf, "at_risk_at", "t.at_risk_at <= $4 and t.break_at > $4 and t.at_risk_notified_window is distinct from t.break_window_key", options,
    async (client, teamId, row) => {
      const team = (await loadTeam(client, def.tenantId, teamId, def, false))!;
      const config: TeamConfig = { rule, memberships: team.config.memberships };
      const recipients = teamAtRiskRecipients(def.rules, config, team.state, asOf, opts);
      const names = await externalIds(client, def.tenantId, config.memberships);
      const windowKey = row.break_window_key ?? "";
      const current = advanceTeam(def.rules, config, team.state, asOf, opts).state.chain.current;
      const events: PlannedEvent[] = recipients.map((memberId) => ({
        tenantId: def.tenantId, type: "streak.at_risk", memberId, definitionId: def.id,
        dedupeKey: `${teamEventOwnerKey(teamId, memberId)}:at_risk:${windowKey}`,
        payload: {
          user_id: names.get(memberId) ?? "", definition_id: def.id, team_id: teamId, current_count: current, window_key: windowKey,
          window_end_time: row.window_close_at?.toISOString() ?? null,
        },
        occurredAt: row.at_risk_at?.getTime() ?? asOf,
      }));
      await insertEvents(client, events);
      await client.query("update team set at_risk_notified_window = break_window_key where id = $1", [teamId]);
      sent += events.length;
      return true;
    },
  );
  return sent;
}
