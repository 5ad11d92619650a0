// The redaction walk (src/api/mappers/redaction.mapper.ts) by role: what it removes and clears, that it rebuilds
// only the changed path, never mutates its input, and gives back the very message when nothing needs to change.
import { describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { StreakDefinitionSchema } from "../../src/gen/kindling/v1/definition_pb.js";
import { canContainProvider, redactSecrets } from "../../src/api/mappers/redaction.mapper.ts";

const definition = () =>
  create(StreakDefinitionSchema, {
    id: "d",
    name: "Daily",
    milestones: [
      { threshold: 1 },
      { threshold: 3, reward: { points: 10, provider: { kind: { case: "codePool", value: { codes: ["POOL-1"] } } } } },
      { threshold: 5, reward: { points: 5 } },
      { threshold: 7, reward: { provider: { kind: { case: "webhook", value: { url: "http://127.0.0.1:9/hook", secret: "s3cret" } } } } },
    ],
  });

describe("secret redaction walk", () => {
  it("redaction/non_admins_lose_providers_admins_lose_webhook_secrets_input_untouched", () => {
    const message = definition();
    const before = toBinary(StreakDefinitionSchema, message);

    const service = redactSecrets(StreakDefinitionSchema, message, "SERVICE");
    expect(service.milestones.map((m) => m.reward?.provider)).toEqual([undefined, undefined, undefined, undefined]);
    expect(service.milestones.map((m) => m.threshold)).toEqual([1, 3, 5, 7]);
    expect(service.milestones[1]!.reward!.points).toBe(10);
    // Only the changed path is rebuilt: untouched milestones are the same objects.
    expect(service.milestones[0]).toBe(message.milestones[0]);
    expect(service.milestones[2]).toBe(message.milestones[2]);
    expect(service.milestones[1]).not.toBe(message.milestones[1]);

    const admin = redactSecrets(StreakDefinitionSchema, message, "ADMIN");
    expect(admin.milestones[1]!.reward!.provider).toBe(message.milestones[1]!.reward!.provider);
    expect(admin.milestones[3]!.reward!.provider!.kind).toEqual({ case: "webhook", value: expect.objectContaining({ url: "http://127.0.0.1:9/hook", secret: "" }) });
    expect(admin.milestones.slice(0, 3)).toEqual(message.milestones.slice(0, 3));

    expect(toBinary(StreakDefinitionSchema, message)).toEqual(before);
    expect(message.milestones[3]!.reward!.provider!.kind.value).toMatchObject({ secret: "s3cret" });
  });

  it("redaction/nothing_to_redact_gives_back_the_same_message", () => {
    const plain = create(StreakDefinitionSchema, { id: "d", milestones: [{ threshold: 1 }, { threshold: 2, reward: { points: 1 } }] });
    for (const role of ["ADMIN", "SERVICE", "END_USER", "GUEST"] as const) expect(redactSecrets(StreakDefinitionSchema, plain, role)).toBe(plain);
    const adminOnly = create(StreakDefinitionSchema, { milestones: [{ threshold: 1, reward: { provider: { kind: { case: "codePool", value: { codes: ["A"] } } } } }] });
    expect(redactSecrets(StreakDefinitionSchema, adminOnly, "ADMIN")).toBe(adminOnly);
  });

  it("redaction/reach_is_worked_out_per_type", () => {
    expect(canContainProvider(StreakDefinitionSchema)).toBe(true);
    expect(canContainProvider(StreakDefinitionSchema)).toBe(true);
  });
});
