// Provider settings of milestone rewards are returned to ADMIN callers only, and provider secrets to nobody
// (definition.proto, ProviderConfig / WebhookProvider.secret). Definitions travel inside many responses — the
// definition itself, the milestones embedded in MemberStreakProgress and StreakResult, next/achieved milestones —
// so this is written once, against the schema rather than against each message: a walk that visits only the
// fields through which a ProviderConfig can be reached, and rebuilds (never mutates) what it changes, because
// responses share messages with the definition cache.
import type { DescField, DescMessage, Message } from "@bufbuild/protobuf";
import type { Role } from "../context.ts";
import type { StreakDefinition } from "../../gen/kindling/v1/definition_pb.js";

const PROVIDER = "kindling.v1.ProviderConfig";

const reachCache = new Map<string, boolean>();

/** Whether a message of this type can contain a ProviderConfig, at any depth. */
export function canContainProvider(desc: DescMessage, visiting?: Set<string>): boolean {
  const cached = reachCache.get(desc.typeName);
  if (cached !== undefined) return cached;
  if (desc.typeName === PROVIDER) return true;
  // Made only when the answer is not cached yet: this runs for every response (redaction.interceptor.ts).
  visiting ??= new Set();
  if (visiting.has(desc.typeName)) return false;
  visiting.add(desc.typeName);
  const reaches = desc.fields.some((f) => {
    const child = childMessage(f);
    return child !== undefined && canContainProvider(child, visiting);
  });
  visiting.delete(desc.typeName);
  // A type on a cycle is only final once the outermost call settles it.
  if (visiting.size === 0 || reaches) reachCache.set(desc.typeName, reaches);
  return reaches;
}

function childMessage(f: DescField): DescMessage | undefined {
  if (f.fieldKind === "message") return f.message;
  if (f.fieldKind === "list" && f.listKind === "message") return f.message;
  if (f.fieldKind === "map" && f.mapKind === "message") return f.message;
  return undefined;
}

type Plain = Record<string, unknown>;

/** The ProviderConfig as the caller may see it: gone for non-admins, without the webhook secret for admins. */
function redactProvider(provider: Plain, role: Role): Plain | undefined {
  if (role !== "ADMIN") return undefined;
  const kind = provider["kind"] as { case?: string; value?: Plain } | undefined;
  if (kind?.case !== "webhook" || !kind.value || kind.value["secret"] === "") return provider;
  return { ...provider, kind: { case: "webhook", value: { ...kind.value, secret: "" } } };
}

function redactValue(desc: DescMessage, value: Plain, role: Role): Plain | undefined {
  if (desc.typeName === PROVIDER) return redactProvider(value, role);
  return redactMessage(desc, value, role);
}

/** The fields of each message type through which a ProviderConfig can be reached, with their message type. */
const providerPaths = new WeakMap<DescMessage, readonly (readonly [DescField, DescMessage])[]>();

function pathsOf(desc: DescMessage): readonly (readonly [DescField, DescMessage])[] {
  let paths = providerPaths.get(desc);
  if (paths === undefined) {
    paths = desc.fields.flatMap((f) => {
      const child = childMessage(f);
      return child !== undefined && canContainProvider(child) ? [[f, child] as const] : [];
    });
    providerPaths.set(desc, paths);
  }
  return paths;
}

function redactMessage(desc: DescMessage, message: Plain, role: Role): Plain {
  // Allocates nothing unless something changes: this walks every response that can hold a provider (a progress
  // read's milestones), and almost none do.
  let copy: Plain | undefined;
  for (const [f, child] of pathsOf(desc)) {
    if (f.oneof) {
      const holder = message[f.oneof.localName] as { case?: string; value?: Plain } | undefined;
      if (holder?.case !== f.localName || !holder.value) continue;
      const next = redactValue(child, holder.value, role);
      if (next !== holder.value) (copy ??= { ...message })[f.oneof.localName] = next === undefined ? { case: undefined } : { case: f.localName, value: next };
      continue;
    }
    const current = message[f.localName];
    if (current === undefined || current === null) continue;
    let next: unknown = current;
    if (f.fieldKind === "list") next = redactList(child, current as Plain[], role);
    else if (f.fieldKind === "map") next = redactMap(child, current as Record<string, Plain>, role);
    else next = redactValue(child, current as Plain, role);
    if (next !== current) (copy ??= { ...message })[f.localName] = next;
  }
  return copy ?? message;
}

/** The list with each item redacted (items redacted away are left out), or the same list when none changed. */
function redactList(child: DescMessage, items: readonly Plain[], role: Role): readonly Plain[] {
  let out: Plain[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const next = redactValue(child, item, role);
    if (out === undefined && next === item) continue;
    out ??= items.slice(0, i);
    if (next !== undefined) out.push(next);
  }
  return out ?? items;
}

/** The map with each value redacted (values redacted away are left out), or the same map when none changed. */
function redactMap(child: DescMessage, entries: Readonly<Record<string, Plain>>, role: Role): Readonly<Record<string, Plain>> {
  let out: Record<string, Plain> | undefined;
  const keys = Object.keys(entries);
  for (let i = 0; i < keys.length; i++) {
    const item = entries[keys[i]!]!;
    const next = redactValue(child, item, role);
    if (out === undefined && next === item) continue;
    if (out === undefined) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]!] = entries[keys[j]!]!;
    }
    if (next !== undefined) out[keys[i]!] = next;
  }
  return out ?? entries;
}

/**
 * The message as `role` may see it. Returns the same object when nothing had to change (the common case: no
 * milestone has a provider), otherwise a copy with only the changed path rebuilt.
 */
export function redactSecrets<T extends Message>(desc: DescMessage, message: T, role: Role): T {
  if (!canContainProvider(desc)) return message;
  return redactMessage(desc, message, role) as unknown as T;
}

/**
 * WebhookProvider.secret is input-only, so a client that read a definition and writes its milestones back sends
 * an empty secret: "on update, an empty secret keeps the stored one" (definition.proto). Fills those in `next`
 * from the stored milestone with the same threshold.
 */
export function keepStoredProviderSecrets(stored: StreakDefinition, next: StreakDefinition): void {
  for (const m of next.milestones) {
    const kind = m.reward?.provider?.kind;
    if (kind?.case !== "webhook" || kind.value.secret !== "") continue;
    const before = stored.milestones.find((s) => s.threshold === m.threshold)?.reward?.provider?.kind;
    if (before?.case === "webhook" && before.value.secret !== "") kind.value.secret = before.value.secret;
  }
}
