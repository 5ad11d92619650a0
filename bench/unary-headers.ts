// The header work of one unary gRPC call on src/api/grpc-unary.ts's path, before and after RecordHeaders
// (src/api/record-headers.ts), side by side in one process and reported as a ratio: the request's headers made
// web Headers and read by name as the call reads them (deadline, compression, credentials, logging), and the
// response's headers and trailers made and turned back into the record written to the stream.
//
// `node bench/unary-headers.ts` (a few seconds; nothing written).
import { RecordHeaders } from "../src/api/record-headers.ts";
import { nodeHeaders, OK_TRAILER, RESPONSE_HEADER } from "../src/api/grpc-unary.ts";

/** A call as the bench's Go client sends it (bench/loadgen). */
const REQUEST: Record<string, string> = {
  ":method": "POST", ":path": "/kindling.v1.MemberStreakService/GetMemberStreak", ":authority": "127.0.0.1:41234", ":scheme": "http",
  "content-type": "application/grpc", "user-agent": "grpc-go/1.70.0", te: "trailers", "grpc-timeout": "9999968u",
  apikey: "0c1d2f4e-aaaa-bbbb-cccc-111122223333", secretkey: "s3cr3t-abcdefghijklmnopqrstuvwxyz012345",
};
const READ = ["grpc-timeout", "grpc-accept-encoding", "apikey", "secretkey", "content-type"];

/** Before: Headers built entry by entry (pseudo-headers left out), as the path did. */
function before(): unknown {
  const header = new Headers();
  for (const key in REQUEST) if (key.charCodeAt(0) !== 58) header.append(key, REQUEST[key]!);
  for (const name of READ) header.get(name);
  return [nodeHeaders(new Headers(RESPONSE_HEADER)), nodeHeaders(new Headers(OK_TRAILER))];
}

function after(): unknown {
  const header = new RecordHeaders(REQUEST);
  for (const name of READ) header.get(name);
  return [nodeHeaders(new RecordHeaders(RESPONSE_HEADER)), nodeHeaders(new RecordHeaders(OK_TRAILER))];
}

const CALLS = 200_000;
const perCall = (run: () => unknown) => {
  const start = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) run();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / CALLS;
};
// Warm both, then alternate rounds so neither side always runs on the warmer process.
perCall(before);
perCall(after);
const rounds: { before: number; after: number }[] = [];
for (let round = 0; round < 5; round++) {
  const b = perCall(before);
  const a = perCall(after);
  rounds.push({ before: b, after: a });
}
const median = (xs: number[]) => xs.toSorted((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const b = median(rounds.map((r) => r.before));
const a = median(rounds.map((r) => r.after));
console.log(`header work per unary call (CPU, median of ${rounds.length} rounds of ${CALLS}): Headers ${b.toFixed(2)} µs, RecordHeaders ${a.toFixed(2)} µs, ratio ${(a / b).toFixed(2)}×`);
