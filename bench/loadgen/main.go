// The benchmark's compiled load generator (bench/ingest.ts runs it when a Go toolchain is present; BENCH_CLIENT
// picks). A grpc-go client: `concurrency` unary calls in flight over `connections` HTTP/2 connections for
// `seconds`, then one JSON line with requests/s and latency percentiles, the same shape as bench/load-worker.ts.
//
// Why compiled: on a small machine the load generator shares the cores with the server it measures. pgbench,
// the other side of the ratios, drives PostgreSQL from lean C; a JavaScript client spends about as much CPU per
// call as the server's transport does. Requests are encoded by hand with protowire (the same messages the
// JavaScript client sends: see load-worker.ts) and sent through a pass-through codec, so no generated Go code
// is needed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends and receives already-encoded protobuf bytes; its name keeps the content type application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

type result struct {
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	PerSecond float64 `json:"perSecond"`
	P50Ms     float64 `json:"p50Ms"`
	P95Ms     float64 `json:"p95Ms"`
	P99Ms     float64 `json:"p99Ms"`
	// The load generator's own CPU (user + system) per answered call: it shares the machine's cores with the API
	// and PostgreSQL, so what it costs is reported next to their figures.
	ClientCpuMicrosPerCall float64 `json:"clientCpuMicrosPerCall"`
}

func str(b []byte, field protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func msg(b []byte, field protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

// kindling.v1.RecordActivityRequest{activity: ActivityInput{member_external_id, event_type, occur_time, value, unique_identifier}}
func recordActivity(i int64, members int64, run string) []byte {
	now := time.Now()
	var ts []byte
	ts = protowire.AppendTag(ts, 1, protowire.VarintType)
	ts = protowire.AppendVarint(ts, uint64(now.Unix()))
	ts = protowire.AppendTag(ts, 2, protowire.VarintType)
	ts = protowire.AppendVarint(ts, uint64(now.Nanosecond()))
	var a []byte
	a = str(a, 1, fmt.Sprintf("m%d", (i*7919)%members))
	a = str(a, 4, "purchase")
	a = msg(a, 5, ts)
	a = protowire.AppendTag(a, 6, protowire.Fixed64Type)
	a = protowire.AppendFixed64(a, 0x4014000000000000) // 5.0
	a = str(a, 8, fmt.Sprintf("%s-%d", run, i))
	return msg(nil, 1, a)
}

// kindling.v1.GetMemberStreakRequest{member_external_id, definition_id}
func getMemberStreak(i int64, members int64, definition string) []byte {
	b := str(nil, 1, fmt.Sprintf("m%d", (i*104729)%members))
	return str(b, 2, definition)
}

// kindling.v1.GetLeaderboardRequest{definition_id, metric: CURRENT_COUNT, limit}
func getLeaderboard(definition string, limit int) []byte {
	b := str(nil, 1, definition)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(limit))
}

// kindling.v1.GetLeaderboardRankRequest{definition_id, metric: CURRENT_COUNT, member_external_id: a random m1..m{members}, neighbours: 5}
func getLeaderboardRank(definition string, members int64) []byte {
	b := str(nil, 1, definition)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = str(b, 3, fmt.Sprintf("m%d", 1+rand.Int64N(members)))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	return protowire.AppendVarint(b, 5)
}

// The number of top-level occurrences of field 1 (GetLeaderboardResponse.entries) in an encoded message.
func entries(reply []byte) (int, error) {
	n := 0
	for len(reply) > 0 {
		num, typ, size := protowire.ConsumeTag(reply)
		if size < 0 {
			return 0, protowire.ParseError(size)
		}
		reply = reply[size:]
		size = protowire.ConsumeFieldValue(num, typ, reply)
		if size < 0 {
			return 0, protowire.ParseError(size)
		}
		reply = reply[size:]
		if num == 1 {
			n++
		}
	}
	return n, nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p / 100 * float64(len(sorted)))
	if k >= len(sorted) {
		k = len(sorted) - 1
	}
	return sorted[k]
}

func round(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

func main() {
	addr := flag.String("addr", "", "host:port of the API")
	kind := flag.String("kind", "health", "ingest | read | health | leaderboard-top | leaderboard-rank | leaderboard-settings")
	seconds := flag.Float64("seconds", 10, "duration")
	concurrency := flag.Int("concurrency", 32, "calls in flight")
	connections := flag.Int("connections", 1, "HTTP/2 connections, used round robin")
	keyID := flag.String("apikey", "", "API key id")
	secret := flag.String("secret", "", "API key secret")
	definition := flag.String("definition", "", "definition id (read)")
	members := flag.Int64("members", 5000, "seeded members m0..m{members-1}")
	run := flag.String("run", "run", "prefix that makes unique identifiers unique across runs")
	limit := flag.Int("limit", 100, "entries asked of GetLeaderboard; an answer with fewer counts as an error (leaderboard-top)")
	procs := flag.Int("procs", 0, "threads running Go code at once (GOMAXPROCS); 0 keeps Go's default, one per core")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}

	var method string
	var request func(i int64) []byte
	// What makes an answer count as one; by default a non-empty message (health: any).
	check := func(reply []byte) error {
		if len(reply) == 0 && *kind != "health" {
			return errors.New("empty response message")
		}
		return nil
	}
	switch *kind {
	case "ingest":
		method = "/kindling.v1.ActivityService/RecordActivity"
		request = func(i int64) []byte { return recordActivity(i, *members, *run) }
	case "read":
		method = "/kindling.v1.MemberStreakService/GetMemberStreak"
		request = func(i int64) []byte { return getMemberStreak(i, *members, *definition) }
	case "health":
		method = "/grpc.health.v1.Health/Check"
		request = func(int64) []byte { return nil }
	case "leaderboard-top":
		method = "/kindling.v1.LeaderboardService/GetLeaderboard"
		request = func(int64) []byte { return getLeaderboard(*definition, *limit) }
		check = func(reply []byte) error {
			n, err := entries(reply)
			if err == nil && n != *limit {
				err = fmt.Errorf("top %d returned %d entries", *limit, n)
			}
			return err
		}
	case "leaderboard-rank":
		method = "/kindling.v1.LeaderboardService/GetLeaderboardRank"
		request = func(int64) []byte { return getLeaderboardRank(*definition, *members) }
		// A member without a ranked row (opted out) answers an empty message.
		check = func([]byte) error { return nil }
	case "leaderboard-settings":
		// A one-row read whose answer (hidden_from_end_users: false) encodes to no bytes.
		method = "/kindling.v1.LeaderboardService/GetLeaderboardSettings"
		request = func(int64) []byte { return nil }
		check = func([]byte) error { return nil }
	default:
		fmt.Fprintf(os.Stderr, "unknown kind %q\n", *kind)
		os.Exit(2)
	}

	conns := make([]*grpc.ClientConn, max(1, *connections))
	for k := range conns {
		c, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			fmt.Fprintln(os.Stderr, "connect:", err)
			os.Exit(1)
		}
		c.Connect()
		conns[k] = c
		defer c.Close()
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "apikey", *keyID, "secretkey", *secret)

	var counter atomic.Int64
	var errorsSeen atomic.Int64
	latencies := make([][]float64, *concurrency)
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	cpuBefore := cpuMicros()
	started := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var reply []byte
			for time.Now().Before(deadline) {
				i := counter.Add(1) - 1
				in := request(i)
				t0 := time.Now()
				err := conns[int(i)%len(conns)].Invoke(ctx, method, &in, &reply)
				if err == nil {
					err = check(reply)
				}
				if err != nil {
					if errorsSeen.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, "request failed:", err)
					}
					continue
				}
				latencies[w] = append(latencies[w], float64(time.Since(t0).Microseconds())/1000)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(started).Seconds()
	cpuUsed := cpuMicros() - cpuBefore
	var all []float64
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Float64s(all)
	out, _ := json.Marshal(result{
		Requests: len(all), Errors: int(errorsSeen.Load()), PerSecond: round(float64(len(all)) / elapsed),
		P50Ms: round(percentile(all, 50)), P95Ms: round(percentile(all, 95)), P99Ms: round(percentile(all, 99)),
		ClientCpuMicrosPerCall: round(cpuUsed / float64(max(1, len(all)))),
	})
	fmt.Println(string(out))
}

// cpuMicros is this process's CPU time so far (user + system, every thread), in microseconds.
func cpuMicros() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return float64(u.Utime.Sec+u.Stime.Sec)*1e6 + float64(u.Utime.Usec+u.Stime.Usec)
}
