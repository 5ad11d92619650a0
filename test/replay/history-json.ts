// Workflow histories as JSON fixtures. Uses @temporalio/proto's own History type (toObject/fromObject) rather
// than @temporalio/common's historyToJSON: with the SDK's nested protobufjs copies installed side by side, the
// latter's protojson rejects messages built by the other copy ("type must be a Type").
import proto, { type temporal } from "@temporalio/proto";

// CommonJS: its namespaces are reachable through the default export only under plain Node.
const History = proto.temporal.api.history.v1.History;

export function historyToFixture(history: temporal.api.history.v1.IHistory): string {
  const object = History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String });
  return `${JSON.stringify(object, null, 1)}\n`;
}

export function historyFromFixture(json: string): temporal.api.history.v1.History {
  return History.fromObject(JSON.parse(json) as Record<string, unknown>);
}
