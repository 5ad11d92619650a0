// The V8 settings of a process that serves the API.
//
// Allocation-site pretenuring off (`--no-allocation-site-pretenuring`). V8 watches how many of the objects made at
// each allocation site survive a young-generation collection, and once most do, makes that site's objects directly
// in the old generation. Under the API's load — every call making the same objects (HTTP/2 streams and their
// headers, protobuf messages, handler contexts) that live for the few milliseconds the call takes, with a few dozen
// calls in flight at any instant — that heuristic moved sites whose objects die with their call into the old
// generation. A dead object there is only found dead by a full collection; until then a young collection takes
// what it points to as alive, copies it and promotes it. Measured in bench/ at 32 calls in flight: 4–6 MB
// promoted at every young collection, although no more than ~20 HTTP/2 streams were reachable at a time, and a
// full collection about once a second. With pretenuring off, alternating runs measured the API's CPU per call
// 5–15 % lower, and the young collections' pauses on reads about halved (522 → 231 ms in a 10 s phase).
import { setFlagsFromString } from "node:v8";

/** Applies the API's V8 settings to this process (process-wide; applying them again changes nothing). */
export function applyApiV8Settings(): void {
  setFlagsFromString("--no-allocation-site-pretenuring");
}
