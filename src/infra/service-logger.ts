// The logging surface the embedded services need. It is the subset of pino's Logger they use, so the process's
// pino logger (or a child of it) can be passed as is, while tests and scripts can pass something smaller.
export interface ServiceLogger {
  info(fields: Record<string, unknown>, message?: string): void;
  warn(fields: Record<string, unknown>, message?: string): void;
  error(fields: Record<string, unknown>, message?: string): void;
}

export const silentLogger: ServiceLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
