// Structured JSON logs. Every component gets a child logger carrying its name; request logs add tenant, method,
// status code and latency (see src/api/interceptors/logging.interceptor.ts).
import { pino, type Logger } from "pino";
import type { LogLevel } from "../config/config.ts";

export type { Logger };

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: "kindling" }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? process.stdout);
}
