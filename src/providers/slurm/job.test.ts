import { describe, expect, it } from 'vitest';
import { batchScript, goneReason, jobAlive, parseSqueue, sbatchArgs, type JobRequest } from './job.js';
import { lastError } from './commands.js';

const job: JobRequest = {
  instanceId: 'i-abc', partition: 'gpu', account: 'team', timeLimit: '8:00:00', gres: 'gpu:1', extraArgs: ['--exclusive'],
  scratchDir: "/var/tmp/dspool/i-abc", outputFile: '/var/tmp/dspool/i-abc.out', node: '/usr/bin/node', agentEntry: "/opt/dspool's/dist/agent/main.js",
};

describe('Slurm job', () => {
  it('names every pool.yaml setting as an sbatch flag and exports the agent variables by name only', () => {
    const args = sbatchArgs(job);
    expect(args).toContain('--job-name=dspool-i-abc');
    expect(args).toContain('--partition=gpu');
    expect(args).toContain('--account=team');
    expect(args).toContain('--time=8:00:00');
    expect(args).toContain('--gres=gpu:1');
    expect(args).toContain('--no-requeue');
    expect(args[args.length - 1]).toBe('--exclusive');
    const exported = args.find((a) => a.startsWith('--export='));
    expect(exported).toBe('--export=PATH,LANG,DSPOOL_HUB_URL,DSPOOL_INSTANCE_ID,DSPOOL_JOIN_TOKEN,DSPOOL_AGENT_SETTINGS');
    expect(args.some((a) => /JOIN_TOKEN=/.test(a))).toBe(false);
  });

  it('leaves out what pool.yaml leaves null', () => {
    const args = sbatchArgs({ ...job, partition: null, account: null, timeLimit: null, gres: null, extraArgs: [] });
    expect(args.some((a) => /^--(partition|account|time|gres)=/.test(a))).toBe(false);
  });

  it('builds a script that quotes its paths, forwards SIGTERM to the agent and removes the instance disk', () => {
    const script = batchScript(job);
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    expect(script).toContain(`'/opt/dspool'\\''s/dist/agent/main.js'`);
    expect(script).toContain(`trap 'kill -TERM "$agent" 2>/dev/null' TERM INT`);
    expect(script).toContain('rm -rf -- "$scratch"');
  });

  it('reads squeue and tells living jobs from ended ones, with a reason for each end', () => {
    const jobs = parseSqueue('12|dspool-i-1|RUNNING|n1\n13|dspool-i-2|TIMEOUT|n1\n\ngarbage\n14|dspool-i-3|PENDING|\n');
    expect(jobs.map((j) => [j.jobId, j.state])).toEqual([['12', 'RUNNING'], ['13', 'TIMEOUT'], ['14', 'PENDING']]);
    expect(jobAlive('RUNNING')).toBe(true);
    expect(jobAlive('PENDING')).toBe(true);
    for (const ended of ['COMPLETED', 'COMPLETING', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'FAILED']) expect(jobAlive(ended)).toBe(false);
    expect(goneReason('TIMEOUT')).toMatch(/time limit/);
    expect(goneReason('NODE_FAIL')).toMatch(/node failed/);
    expect(goneReason('CANCELLED')).toMatch(/scancel/);
    expect(goneReason(undefined)).toMatch(/no longer known/);
  });

  it('keeps the last error line of a Slurm command', () => {
    expect(lastError('sbatch: error: invalid partition specified: x\nsbatch: error: Batch job submission failed: Invalid partition name specified\n'))
      .toBe('Batch job submission failed: Invalid partition name specified');
  });
});
