// The widget's entry point, served as /widget/kindling-streak.js: importing it defines <kindling-streak> and the
// <kindling-streaks> list of all of a member's streaks.
import { defineKindlingStreak } from "./kindling-streak.ts";
import { defineKindlingStreaks } from "./kindling-streaks.ts";

export { KindlingStreakElement } from "./kindling-streak.ts";
export { KindlingStreaksElement } from "./kindling-streaks.ts";

defineKindlingStreak();
defineKindlingStreaks();
