import { defineEntity, p } from "@mikro-orm/core";

export type DefinitionState = "DRAFT" | "LIVE" | "PAUSED" | "ARCHIVED";

/**
 * A pause of the definition, kept so that windows which closed during it stay neutral (PRODUCT §3 Pause).
 * Same shape as the domain's PauseInterval: epoch ms, `to` null while still paused.
 */
export interface PauseInterval {
  readonly from: number;
  readonly to: number | null;
}

const StreakDefinitionSchema = defineEntity({
  name: "StreakDefinition",
  tableName: "streak_definition",
  indexes: [{ properties: ["tenantId", "state"] }],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    name: p.string().length(256),
    description: p.string().length(1024).default(""),
    state: p.string().length(16).$type<DefinitionState>(),
    eventTypes: p.array().default([]),
    /**
     * The definition's rules (window, condition, grace, milestones, tiers, freezes, display) as the proto JSON of
     * kindling.v1.StreakDefinition: the contract is buf-breaking-checked, so stored documents stay readable.
     * The domain's StreakRules are derived from it once per version (see api/mappers).
     */
    spec: p.json<Record<string, unknown>>(),
    startAt: p.datetime().nullable(),
    endAt: p.datetime().nullable(),
    pauses: p.json<PauseInterval[]>().default("[]"),
    /** Bumped on every change; caches and etags key on it. */
    version: p.integer().default(1),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class StreakDefinition extends StreakDefinitionSchema.class {}
StreakDefinitionSchema.setClass(StreakDefinition);
export { StreakDefinitionSchema };
