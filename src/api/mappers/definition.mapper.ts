// kindling.v1.StreakDefinition <-> stored row <-> the domain's StreakRules.
import { create, fromJson, toJson, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { DefinitionState, MultiplierTierSchema, StreakDefinitionSchema, type StreakDefinition as StreakDefinitionMessage } from "../../gen/kindling/v1/definition_pb.js";
import { LOYALTEEZ_MULTIPLIER_TIERS } from "../../domain/rules.ts";
import type { DefinitionState as StoredState, StreakDefinition } from "../../db/entities/index.ts";
export { rulesFromMessage, displayFromMessage } from "../../engine/definitions/definition-rules.ts";

const stateToProto: Record<StoredState, DefinitionState> = {
  DRAFT: DefinitionState.DRAFT,
  LIVE: DefinitionState.LIVE,
  PAUSED: DefinitionState.PAUSED,
  ARCHIVED: DefinitionState.ARCHIVED,
};

export function definitionStateFromProto(state: DefinitionState): StoredState {
  const found = (Object.entries(stateToProto) as [StoredState, DefinitionState][]).find(([, v]) => v === state);
  if (!found) throw new Error(`unmapped definition state ${state}`);
  return found[0];
}

/** Fields the server owns; they are never taken from a request and never stored inside the spec document. */
const serverOwned = ["id", "state", "createTime", "updateTime", "etag"] as const;

/** The client-supplied part of a definition, as stored in the `spec` column. */
export function specFromMessage(message: StreakDefinitionMessage): Record<string, unknown> {
  const copy = create(StreakDefinitionSchema, message);
  for (const key of serverOwned) (copy as Record<string, unknown>)[key] = create(StreakDefinitionSchema)[key];
  return toJson(StreakDefinitionSchema, copy) as Record<string, unknown>;
}

export function etagOf(row: Pick<StreakDefinition, "id" | "version">): string {
  return `W/"${row.version}"`;
}

export function messageFromRow(row: StreakDefinition): StreakDefinitionMessage {
  const message = fromJson(StreakDefinitionSchema, row.spec as JsonObject, { ignoreUnknownFields: true });
  message.id = row.id;
  message.state = stateToProto[row.state];
  message.createTime = timestampFromMs(row.createdAt.getTime());
  message.updateTime = timestampFromMs(row.updatedAt.getTime());
  message.etag = etagOf(row);
  // The contract: a definition created without tiers gets the Loyalteez defaults, and they are what it shows
  // (rulesFromMessage applies the same defaults, so what is returned is what counts).
  if (message.multiplierTiers.length === 0) {
    message.multiplierTiers = LOYALTEEZ_MULTIPLIER_TIERS.map((t) => create(MultiplierTierSchema, { minCount: t.minCount, multiplier: t.multiplier }));
  }
  return message;
}

export const msOf = (t: Parameters<typeof timestampMs>[0] | undefined): number | undefined => (t ? timestampMs(t) : undefined);
