/*
 * The machine and software versions a run was measured on, for the JSON and RESULTS.md.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';
import { REDIS_SERVER } from '../test/helpers/redis.js';
import { nginxVersion } from './nginx.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  kernel: string;
  node: string;
  nginx: string | undefined;
  fastGateway: string;
  autocannon: string;
  redis: string | undefined;
}

function packageVersion(name: string): string {
  const file = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function redisVersion(): string | undefined {
  const { stdout } = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  return /v=(\S+)/.exec(stdout ?? '')?.[1];
}

/** `cores`: the CPUs the bench may use, counted before it pinned itself (affinity.ts). */
export function describeMachine(cores = availableParallelism()): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    cores,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    nginx: nginxVersion(),
    fastGateway: packageVersion('fast-gateway'),
    autocannon: packageVersion('autocannon'),
    redis: redisVersion(),
  };
}
