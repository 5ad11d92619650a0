// The V8 settings of a process that serves the API.
//
// Allocation-site pretenuring off (`--no-allocation-site-pretenuring`). V8 watches how many of the objects made at
// each allocation site survive a young-generation collection, and once most do, makes that site's objects directly
// in the old generation. Under the API's load — every call making the same objects (HTTP/2 streams and their
// headers, protobuf messages, handler contexts) that live for the few milliseconds the call takes, with a few dozen
// calls in flight at any instant — that heuristic moved sites whose objects then die young into the old
// generation: the old generation filled at tens of MB a second and was collected about once a second, and the
// young collections copied 4–6 MB each time. With it off (bench/, 32 calls in flight, alternating runs), the API's
// CPU per call fell ~10 % (≈15 % for the no-op health check) and the collector's pauses by about half on reads.
import { setFlagsFromString } from "node:v8";

let applied = false;

/** Applies the API's V8 settings to this process, once (they are process-wide; later calls do nothing). */
export function applyApiV8Settings(): void {
  if (applied) return;
  applied = true;
  setFlagsFromString("--no-allocation-site-pretenuring");
}
