import type { StreakStatus } from "./streak-status.ts";

/** Gamopanda end-user display (EUD) fields, without the `eud` prefix. */
export type DisplayTextKey =
  | "title"
  | "description"
  | "icon"
  | "inProgressLabel"
  | "completedLabel"
  | "notStartedLabel"
  | "brokenLabel"
  | "viewDetailsButtonText"
  | "nonMilestoneNextToBeAchievedMessage"
  | "nonMilestoneAchievedMessage"
  | "completedStreakMessage"
  | "brokenStreakMessage"
  | "milestoneNextToBeAchievedMessage"
  | "milestoneAchievedMessage";

export type MessageKey = Extract<DisplayTextKey, `${string}Message`>;

export interface PeriodWords {
  readonly one: string;
  readonly other: string;
}

/** Texts for one language; any field may be missing and falls back along the language chain. */
export type DisplayTexts = Partial<Record<DisplayTextKey, string>> & {
  /** Words for `{{periodText}}` (singular / plural), e.g. `{ one: "jour", other: "jours" }`. */
  readonly periodWords?: PeriodWords;
};

export interface DisplayConfig {
  /** Language used when the requested one (and its base language) has no text, e.g. `en` or `fr`. */
  readonly defaultLanguage?: string;
  /** Texts per BCP-47 language tag (`en`, `fr`, `fr-CA`). */
  readonly texts?: Readonly<Record<string, DisplayTexts>>;
  /** Decimals for `{{nextRemainingValue}}`; default: none for whole numbers, otherwise 2 (`20.50`). */
  readonly valueDecimals?: number;
}

/** Gamopanda's documented defaults, verbatim; the last link of every fallback chain. */
export const GAMOPANDA_DEFAULT_TEXTS: Readonly<Partial<Record<DisplayTextKey, string>>> = {
  inProgressLabel: "In Progress",
  completedLabel: "Completed",
  notStartedLabel: "Not Started",
  brokenLabel: "Broken",
  viewDetailsButtonText: "View Details",
  nonMilestoneNextToBeAchievedMessage:
    "Shop for ${{nextRemainingValue}} or more to complete the {{periodText}} {{nextProgressValue}} streak!",
  nonMilestoneAchievedMessage:
    "You have completed {{periodText}} {{currentProgressValue}} streak! Come back next {{periodText}} to shop more to maintain your streak and reach the next milestone!",
  completedStreakMessage:
    "Congratulations! You have completed this streak! Come back next {{periodText}} to shop more and start your next streak!",
  brokenStreakMessage:
    "Your streak has been broken. Don't worry, you can start a new streak today! Shop more and reach your next milestone!",
  milestoneNextToBeAchievedMessage:
    "Shop for ${{nextRemainingValue}} or more for {{nextRemainingPeriod}} {{periodText}}s to complete the next milestone!",
  milestoneAchievedMessage:
    "You have completed {{periodText}} {{currentProgressValue}} streak! Come back next {{periodText}} to shop more to maintain your streak and reach the next milestone!",
};

export const MAX_TEXT_LENGTH: Readonly<Record<DisplayTextKey, number>> = {
  title: 48,
  description: 1024,
  icon: 2048,
  inProgressLabel: 32,
  completedLabel: 32,
  notStartedLabel: 32,
  brokenLabel: 32,
  viewDetailsButtonText: 32,
  nonMilestoneNextToBeAchievedMessage: 256,
  nonMilestoneAchievedMessage: 256,
  completedStreakMessage: 256,
  brokenStreakMessage: 256,
  milestoneNextToBeAchievedMessage: 256,
  milestoneAchievedMessage: 256,
};

export const MESSAGE_KEYS: readonly MessageKey[] = [
  "nonMilestoneNextToBeAchievedMessage",
  "nonMilestoneAchievedMessage",
  "completedStreakMessage",
  "brokenStreakMessage",
  "milestoneNextToBeAchievedMessage",
  "milestoneAchievedMessage",
];

const LABEL_BY_STATUS: Readonly<Record<StreakStatus, DisplayTextKey>> = {
  NOT_STARTED: "notStartedLabel",
  IN_PROGRESS: "inProgressLabel",
  COMPLETED: "completedLabel",
  BROKEN: "brokenLabel",
};

export type PeriodName = "DAILY" | "WEEKLY" | "MONTHLY" | "ROLLING";

const ENGLISH_PERIOD_WORDS: Readonly<Record<PeriodName, PeriodWords>> = {
  DAILY: { one: "day", other: "days" },
  WEEKLY: { one: "week", other: "weeks" },
  MONTHLY: { one: "month", other: "months" },
  ROLLING: { one: "day", other: "days" },
};

const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

export function isKnownDisplayLanguageTag(tag: string): boolean {
  return LANGUAGE_TAG.test(tag);
}

export function validateDisplay(display: DisplayConfig): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  for (const [lang, texts] of Object.entries(display.texts ?? {})) {
    if (!isKnownDisplayLanguageTag(lang)) problems.push({ field: `display.texts.${lang}`, message: `not a language tag: ${lang}` });
    for (const [key, max] of Object.entries(MAX_TEXT_LENGTH)) {
      const text = texts[key as DisplayTextKey];
      if (text !== undefined && [...text].length > max) {
        problems.push({ field: `display.texts.${lang}.${key}`, message: `${key} is at most ${max} characters` });
      }
    }
  }
  const d = display.valueDecimals;
  if (d !== undefined && !(Number.isInteger(d) && d >= 0 && d <= 6)) {
    problems.push({ field: "display.valueDecimals", message: "valueDecimals is a whole number from 0 to 6" });
  }
  return problems;
}

function sameTag(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Requested language → its base language (fr-CA → fr) → the definition's default (and its base) → built-in English. */
export function languageChain(requested: string | undefined, display: DisplayConfig | undefined): string[] {
  const chain: string[] = [];
  const add = (tag: string | undefined) => {
    if (tag === undefined || tag === "") return;
    for (let t = tag; ; t = t.slice(0, t.lastIndexOf("-"))) {
      if (!chain.some((c) => sameTag(c, t))) chain.push(t);
      if (!t.includes("-")) break;
    }
  };
  add(requested);
  add(display?.defaultLanguage);
  return chain;
}

function textsFor(display: DisplayConfig | undefined, lang: string): DisplayTexts | undefined {
  const texts = display?.texts;
  if (texts === undefined) return undefined;
  const key = Object.keys(texts).find((k) => sameTag(k, lang));
  return key === undefined ? undefined : texts[key];
}

/** A text after the fallback chain, with the language it came from (`en-default` for the built-in text). */
export function resolveText(
  display: DisplayConfig | undefined,
  requested: string | undefined,
  key: DisplayTextKey,
): { text: string | null; language: string } {
  for (const lang of languageChain(requested, display)) {
    const text = textsFor(display, lang)?.[key];
    if (text !== undefined && text !== "") return { text, language: lang };
  }
  return { text: GAMOPANDA_DEFAULT_TEXTS[key] ?? null, language: "en" };
}

function periodWords(display: DisplayConfig | undefined, language: string, period: PeriodName): PeriodWords {
  for (const lang of [language, ...languageChain(undefined, display)]) {
    const words = textsFor(display, lang)?.periodWords;
    if (words !== undefined) return words;
  }
  return ENGLISH_PERIOD_WORDS[period];
}

export interface TemplateValues {
  readonly period: PeriodName;
  /** Periods completed so far (`{{currentProgressValue}}`). */
  readonly currentProgressValue: number;
  /** The period being worked towards (`{{nextProgressValue}}`). */
  readonly nextProgressValue: number;
  /** Amount still needed in the current period (`{{nextRemainingValue}}`). */
  readonly nextRemainingValue: number;
  /** Periods still needed for the next milestone (`{{nextRemainingPeriod}}`); null when there is none. */
  readonly nextRemainingPeriod: number | null;
}

export function formatValue(value: number, decimals: number | undefined): string {
  if (decimals !== undefined) return value.toFixed(decimals);
  const rounded = Math.round(value * 100) / 100;
  return Number.isInteger(rounded) ? String(rounded) : rounded.toFixed(2);
}

const VARIABLE = /\{\{\s*(periodText|currentProgressValue|nextProgressValue|nextRemainingValue|nextRemainingPeriod)\s*\}\}(s?)/g;

type TemplatePart = string | { readonly name: string; readonly plural: string };

/** Templates split once into text and variables: every progress view fills six of them, the same few each time. */
const compiledTemplates = new Map<string, readonly TemplatePart[]>();
const MAX_COMPILED_TEMPLATES = 2048;

function templateParts(template: string): readonly TemplatePart[] {
  const cached = compiledTemplates.get(template);
  if (cached) return cached;
  const out: TemplatePart[] = [];
  let last = 0;
  for (const m of template.matchAll(VARIABLE)) {
    if (m.index > last) out.push(template.slice(last, m.index));
    out.push({ name: m[1]!, plural: m[2]! });
    last = m.index + m[0].length;
  }
  if (last < template.length) out.push(template.slice(last));
  if (compiledTemplates.size >= MAX_COMPILED_TEMPLATES) compiledTemplates.clear();
  compiledTemplates.set(template, out);
  return out;
}

function fillVariable(name: string, plural: string, values: TemplateValues, words: PeriodWords, decimals: number | undefined): string {
  switch (name) {
    case "periodText":
      return plural === "s" ? (values.nextRemainingPeriod === 1 ? words.one : words.other) : words.one;
    case "currentProgressValue":
      return String(values.currentProgressValue) + plural;
    case "nextProgressValue":
      return String(values.nextProgressValue) + plural;
    case "nextRemainingValue":
      return formatValue(values.nextRemainingValue, decimals) + plural;
    default:
      return (values.nextRemainingPeriod === null ? "" : String(values.nextRemainingPeriod)) + plural;
  }
}

/**
 * Fills a template. `{{periodText}}s` (as in Gamopanda's defaults) becomes the plural that agrees with
 * `{{nextRemainingPeriod}}` — "2 days", "1 day" — rather than a bare appended `s`.
 */
export function renderTemplate(template: string, values: TemplateValues, words: PeriodWords, decimals?: number): string {
  let out = "";
  for (const part of templateParts(template)) out += typeof part === "string" ? part : fillVariable(part.name, part.plural, values, words, decimals);
  return out;
}

export interface DisplayState {
  readonly status: StreakStatus;
  /** The current period already counts (or is satisfied and waiting to be counted). */
  readonly windowSatisfied: boolean;
  /** A milestone was reached by the period just completed. */
  readonly milestoneJustReached: boolean;
  /** The period being worked towards reaches a milestone. */
  readonly nextPeriodIsMilestone: boolean;
}

/**
 * Which Gamopanda message fits: broken, completed, then — for the current period — achieved (milestone or not)
 * once it is satisfied, otherwise next-to-be-achieved (milestone when the period worked towards reaches one).
 */
export function selectMessage(s: DisplayState): MessageKey {
  if (s.status === "BROKEN" && !s.windowSatisfied) return "brokenStreakMessage";
  if (s.status === "COMPLETED") return "completedStreakMessage";
  if (s.windowSatisfied) return s.milestoneJustReached ? "milestoneAchievedMessage" : "nonMilestoneAchievedMessage";
  return s.nextPeriodIsMilestone ? "milestoneNextToBeAchievedMessage" : "nonMilestoneNextToBeAchievedMessage";
}

export interface RenderedDisplay {
  readonly language: string;
  readonly title: string | null;
  readonly description: string | null;
  readonly icon: string | null;
  readonly statusLabel: string;
  readonly viewDetailsButtonText: string;
  readonly periodText: string;
  /** The message that fits the member's state. */
  readonly messageKey: MessageKey;
  readonly message: string;
  /** Every message rendered, for clients that choose themselves. */
  readonly messages: Readonly<Record<MessageKey, string>>;
}

/**
 * Rendered displays by definition display settings (immutable: a changed definition is a new object) and then by
 * everything else the rendering reads. Reads of the same programme mostly land on a handful of (count, state)
 * pairs, so the six messages, the labels and their fallbacks are resolved once per pair instead of on every read.
 * Bounded per definition; a definition without display settings uses the built-in texts (`DEFAULT_SETTINGS`).
 */
const renderedByDisplay = new WeakMap<DisplayConfig, Map<string, RenderedDisplay>>();
const DEFAULT_SETTINGS: DisplayConfig = {};
const MAX_RENDERED_PER_DEFINITION = 512;

/** The display for these values and state: the same (frozen) object for the same inputs. */
export function renderDisplay(
  display: DisplayConfig | undefined,
  language: string | undefined,
  values: TemplateValues,
  state: DisplayState,
): RenderedDisplay {
  const settings = display ?? DEFAULT_SETTINGS;
  let rendered = renderedByDisplay.get(settings);
  if (rendered === undefined) renderedByDisplay.set(settings, (rendered = new Map()));
  const key = `${language ?? ""}\u0000${values.period}|${values.currentProgressValue}|${values.nextProgressValue}|${values.nextRemainingValue}|${values.nextRemainingPeriod}|${state.status}|${state.windowSatisfied}|${state.milestoneJustReached}|${state.nextPeriodIsMilestone}`;
  const cached = rendered.get(key);
  if (cached !== undefined) return cached;
  const fresh = Object.freeze(renderDisplayNow(display, language, values, state));
  if (rendered.size >= MAX_RENDERED_PER_DEFINITION) rendered.clear();
  rendered.set(key, fresh);
  return fresh;
}

function renderDisplayNow(
  display: DisplayConfig | undefined,
  language: string | undefined,
  values: TemplateValues,
  state: DisplayState,
): RenderedDisplay {
  const text = (key: DisplayTextKey) => resolveText(display, language, key);
  const render = (key: MessageKey) => {
    const r = text(key);
    return renderTemplate(r.text ?? "", values, periodWords(display, r.language, values.period), display?.valueDecimals);
  };
  const messages = Object.freeze(Object.fromEntries(MESSAGE_KEYS.map((k) => [k, render(k)])) as Record<MessageKey, string>);
  const messageKey = selectMessage(state);
  const label = text(LABEL_BY_STATUS[state.status]);
  return {
    language: label.language,
    title: text("title").text,
    description: text("description").text,
    icon: text("icon").text,
    statusLabel: label.text ?? "",
    viewDetailsButtonText: text("viewDetailsButtonText").text ?? "",
    periodText: periodWords(display, label.language, values.period).one,
    messageKey,
    message: messages[messageKey],
    messages,
  };
}
