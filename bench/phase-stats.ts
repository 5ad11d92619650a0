// What a load phase left idle or stalled, beside its CPU per call: the share of the machine's cores that were idle,
// how late the API thread's event loop ran its callbacks, and the garbage collector's pauses on that thread. At a
// level where neither the API nor PostgreSQL uses its core fully, these tell where a call's time goes instead:
// waiting behind other work on the API thread (the event-loop delay), stopped by the collector, or waiting on a
// round trip while the cores idle. And what the phase allocated on the API thread's heap: the collector's work.
//
// The event loop and the collector are this process's: the figures describe the API only when it runs in the
// bench's own process (one API process), as the CPU per call does.
import { readFileSync } from "node:fs";
import { getHeapStatistics, GCProfiler } from "node:v8";
import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";

export interface PhaseStats {
  /** Share of the machine's CPU time that was idle during the phase (null where /proc/stat is not there). */
  readonly idleShare: number | null;
  /** How late the event loop ran a timer due every RESOLUTION_MS: mean and 99th percentile (ms). */
  readonly eventLoopDelayMs: { readonly mean: number; readonly p99: number };
  /** Collector pauses on this thread: milliseconds per second of phase, the longest one, and how many (minor / major). */
  readonly gc: { readonly pauseMsPerSecond: number; readonly longestPauseMs: number; readonly minor: number; readonly major: number };
  /**
   * Bytes this thread allocated on V8's heap during the phase: what the heap grew by, plus what each collection
   * freed (v8.GCProfiler's heap sizes before and after it). Unlike CPU time it does not move with the machine's
   * speed, so it compares two versions run on different days; buffers' memory outside the heap is not in it.
   */
  readonly allocatedBytes: number;
}

/** Cores' idle and total jiffies so far, from the first line of /proc/stat; null where it is not there. */
function cpuJiffies(): { idle: number; total: number } | null {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user and nice).
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { idle: fields[3]! + fields[4]!, total };
  } catch {
    return null;
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The delay timer's period; the histogram records whole intervals, so the delay is what exceeds it. */
const RESOLUTION_MS = 10;

/** Starts watching; the returned function stops and reports the phase. */
export function startPhaseStats(): () => PhaseStats {
  const started = performance.now();
  const cpuBefore = cpuJiffies();
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  let pauseMs = 0;
  let longest = 0;
  let minor = 0;
  let major = 0;
  const count = (entries: readonly PerformanceEntry[]) => {
    for (const entry of entries) {
      pauseMs += entry.duration;
      longest = Math.max(longest, entry.duration);
      const kind = (entry as PerformanceEntry & { readonly detail?: { readonly kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    }
  };
  const observer = new PerformanceObserver((list) => count(list.getEntries()));
  observer.observe({ entryTypes: ["gc"] });
  const heapBefore = getHeapStatistics().used_heap_size;
  const collections = new GCProfiler();
  collections.start();
  return () => {
    const freed = (collections.stop()?.statistics ?? []).reduce((sum, gc) => sum + gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize, 0);
    const allocatedBytes = getHeapStatistics().used_heap_size - heapBefore + freed;
    // Entries not delivered yet are counted before disconnecting.
    count(observer.takeRecords());
    observer.disconnect();
    delay.disable();
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpuJiffies();
    const idleShare = cpuBefore && cpuAfter && cpuAfter.total > cpuBefore.total ? round((cpuAfter.idle - cpuBefore.idle) / (cpuAfter.total - cpuBefore.total), 3) : null;
    return {
      idleShare,
      eventLoopDelayMs: { mean: round(Math.max(0, delay.mean / 1e6 - RESOLUTION_MS), 2), p99: round(Math.max(0, delay.percentile(99) / 1e6 - RESOLUTION_MS), 2) },
      gc: { pauseMsPerSecond: round(pauseMs / seconds, 1), longestPauseMs: round(longest, 1), minor, major },
      allocatedBytes,
    };
  };
}
