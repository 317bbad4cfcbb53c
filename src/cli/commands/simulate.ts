// `dspool simulate`: replays a trace of session arrivals through the autoscaler and placement code on a virtual
// clock and compares policies (instance-hours against the oracle, waits to a kernel, sessions killed).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseConfig, type LoadedConfig } from '../../config/index.js';
import { parseDuration } from '../../lib/duration.js';
import { autoscaleSettings } from '../../hub/autoscale/options.js';
import { TraceError } from '../../hub/autoscale/errors.js';
import { SIMULATION_POLICIES, simulate, type SimulationPolicy, type SimulationResult, type SimulationSetup } from '../../hub/autoscale/simulator.js';
import { parseTrace } from '../../hub/autoscale/trace.js';
import { sessionSettings } from '../../hub/settings.js';
import { resolveConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { printJson } from '../output.js';

/** What an instance offers in a simulation where pool.capacity leaves it to the agent to measure. */
export const SIMULATED_INSTANCE = { cpus: 8, memoryBytes: 32 * 2 ** 30 } as const;

interface SimulateOptions {
  trace: string;
  config?: string;
  compare: string;
  seed: string;
  json: boolean;
  instanceStart: string;
  kernelStart: string;
}

/**
 * Adds `dspool simulate`, which replays a trace through the autoscaler and placement and compares policies.
 *
 * @example
 * registerSimulateCommand(program); // adds `dspool simulate --trace <file> [--compare <policies>] …`
 */
export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('replay a trace of sessions (JSON lines) through the autoscaler and placement on a virtual clock, and compare policies')
    .requiredOption('--trace <file>', 'the trace: one JSON object per line (see README "Simulator")')
    .option('--config <file>', 'pool.yaml whose pool: section is simulated (default: built-in defaults)')
    .option('--compare <policies>', `comma-separated: ${SIMULATION_POLICIES.join(', ')}`, SIMULATION_POLICIES.join(','))
    .option('--seed <n>', 'seed of the start-time jitter (same seed, same result)', '1')
    .option('--instance-start <duration>', 'time from creating an instance to its first session', '60s')
    .option('--kernel-start <duration>', 'time from placing a session to its first kernel result', '3s')
    .option('--json', 'print the results as JSON', false)
    .action((opts: SimulateOptions) => {
      const policies = opts.compare.split(',').map((p) => p.trim()).filter(Boolean);
      for (const p of policies) {
        if (!(SIMULATION_POLICIES as readonly string[]).includes(p)) throw new UsageError(`--compare: unknown policy "${p}"; known: ${SIMULATION_POLICIES.join(', ')}`);
      }
      if (policies.length === 0) throw new UsageError('--compare: name at least one policy');
      if (!/^\d+$/.test(opts.seed)) throw new UsageError(`--seed: "${opts.seed}" is not a whole number`);
      const instanceStartMs = parseDuration(opts.instanceStart);
      if (instanceStartMs === undefined) throw new UsageError(`--instance-start: "${opts.instanceStart}" is not a duration`);
      const kernelStartMs = parseDuration(opts.kernelStart);
      if (kernelStartMs === undefined) throw new UsageError(`--kernel-start: "${opts.kernelStart}" is not a duration`);
      const config: LoadedConfig = opts.config ? resolveConfig(opts.config) : parseConfig('share: { path: /nonexistent }', '<defaults>');
      let text: string;
      try {
        text = readFileSync(opts.trace, 'utf8');
      } catch (error) {
        throw new UsageError(`--trace: cannot read ${opts.trace} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      }
      let trace;
      try {
        trace = parseTrace(text, opts.trace);
      } catch (error) {
        if (error instanceof TraceError) throw new UsageError(`invalid trace ${error.message}`);
        throw error;
      }
      const setup = simulationSetup(config, trace, { seed: Number(opts.seed), instanceStartMs, kernelStartMs });
      for (const s of trace.sessions) {
        if (s.profile !== null && !(s.profile in setup.profiles)) throw new UsageError(`trace: session of ${s.user} asks for profile "${s.profile}", which the config does not define`);
      }
      const results = policies.map((p) => simulate(setup, p as SimulationPolicy));
      if (opts.json) return printJson({ trace: trace.name, seed: setup.seed, instanceStartMs, kernelStartMs, results });
      process.stdout.write(renderTable(trace.name, results));
    });
}

/**
 * The simulation's inputs from pool.yaml and a trace.
 *
 * @example
 * const setup = simulationSetup(config, parseTrace(text, 'trace.jsonl'), { seed: 1, instanceStartMs: 60_000, kernelStartMs: 3_000 });
 * simulate(setup, 'cpu-rule').instanceHours; // the instance-hours that policy used
 */
export function simulationSetup(
  config: LoadedConfig,
  trace: SimulationSetup['trace'],
  o: { seed: number; instanceStartMs: number; kernelStartMs: number },
): SimulationSetup {
  const { profiles, defaultProfile } = sessionSettings(config);
  const cap = config.pool.capacity;
  const def = defaultProfile ? profiles[defaultProfile] : undefined;
  return {
    trace, settings: autoscaleSettings(config),
    room: {
      cpus: cap.cpus ?? SIMULATED_INSTANCE.cpus, memoryBytes: cap.memory ?? SIMULATED_INSTANCE.memoryBytes,
      gpuIndices: Array.from({ length: cap.gpus ?? 0 }, (_, i) => i), maxSessions: cap.maxSessions,
    },
    profiles, defaultRequest: def ? { cpu: def.cpu, memoryBytes: def.memoryBytes, gpus: def.gpus } : { cpu: 0, memoryBytes: 0, gpus: 0 },
    strategy: config.pool.placement, startSize: config.pool.instances, maxInstances: config.pool.max,
    instanceStartMs: o.instanceStartMs, kernelStartMs: o.kernelStartMs, settleMs: 30 * 60_000, seed: o.seed,
  };
}

function renderTable(name: string, results: readonly SimulationResult[]): string {
  const head = ['policy', 'instance-h', 'oracle-h', '× oracle', 'p50 wait', 'p95 wait', 'max wait', 'killed', 'unplaced', 'scalings', 'peak'];
  const rows = results.map((r) => [
    r.policy, r.instanceHours.toFixed(1), r.oracleInstanceHours.toFixed(1), r.ratio.toFixed(2), secs(r.waitP50Ms), secs(r.waitP95Ms), secs(r.waitMaxMs),
    String(r.killed), String(r.unplaced), String(r.scalingEvents), String(r.peakInstances),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => `${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}\n`;
  return `${name}: ${results[0]?.sessions ?? 0} sessions\n${line(head)}${rows.map(line).join('')}`;
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
