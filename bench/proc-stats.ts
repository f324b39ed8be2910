/*
 * CPU time and memory of process trees, read from /proc (Linux). A target is one or more
 * root PIDs (a gateway's primary, nginx's master, a plain server); its workers are found
 * below them at every reading, so a respawned worker is still counted.
 */
import { readFileSync } from 'node:fs';
import { processTree } from './processes.js';

const USER_HZ = 100; // clock ticks per second of /proc/<pid>/stat on Linux

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined; // exited
  }
}

function cpuTicks(pid: number): number {
  const stat = readProc(pid, 'stat');
  if (stat === undefined) return 0;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
}

/** CPU seconds (user + sys) used so far by the processes rooted at `roots`, children included. */
export function cpuSeconds(roots: number | readonly number[]): number {
  let ticks = 0;
  for (const pid of [roots].flat().flatMap(processTree)) ticks += cpuTicks(pid);
  return ticks / USER_HZ;
}

/**
 * CPU seconds the whole machine has been busy (all cores, /proc/stat: everything but idle and
 * iowait). Beside the bench's own processes, it shows how much else ran during a measurement.
 */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / USER_HZ;
}

/** Resident memory of one process in MB (`VmRSS` now, or `VmHWM`, its peak since it started). */
function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readProc(pid, 'status') ?? '');
  return match ? Number(match[1]) / 1024 : 0;
}

export interface ProcessMemory {
  pid: number;
  /** `primary` has children (gateway primary, nginx master), `worker` is one of them. */
  role: 'primary' | 'worker' | 'process';
  /** Highest VmRSS seen while sampling. */
  peakRssMb: number;
  /** VmHWM at the end: the process's peak since it started (start-up and earlier runs too). */
  hwmMb: number;
}

/**
 * Samples VmRSS of every process of `roots` every `everyMs` until `stop()`, which returns the
 * peak per process. Synchronous /proc reads of a few small files: microseconds per sample.
 */
export function sampleMemory(roots: readonly number[], everyMs = 100): { stop(): ProcessMemory[] } {
  const seen = new Map<number, { role: ProcessMemory['role']; peakRssMb: number }>();
  const sample = () => {
    for (const root of roots) {
      const [, ...below] = processTree(root);
      const members: [number, ProcessMemory['role']][] = [
        [root, below.length > 0 ? 'primary' : 'process'],
        ...below.map((pid): [number, ProcessMemory['role']] => [pid, 'worker']),
      ];
      for (const [pid, role] of members) {
        const rss = memoryMb(pid, 'VmRSS');
        const entry = seen.get(pid);
        if (entry === undefined) seen.set(pid, { role, peakRssMb: rss });
        else entry.peakRssMb = Math.max(entry.peakRssMb, rss);
      }
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return [...seen].map(([pid, { role, peakRssMb }]) => ({
        pid,
        role,
        peakRssMb,
        hwmMb: memoryMb(pid, 'VmHWM'),
      }));
    },
  };
}
