// The widget's entry point, served as /widget/kindling-streak.js: importing it defines <kindling-streak>.
import { defineKindlingStreak } from "./kindling-streak.ts";

export { KindlingStreakElement } from "./kindling-streak.ts";

defineKindlingStreak();
