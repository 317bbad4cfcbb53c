// A real single-node Slurm for the tests: munged, slurmctld and slurmd (Debian's slurm-wlm and munge) started as
// plain processes with their config in a temp dir. The controller and the node live in a network namespace the
// test makes (198.18.0.0/15), so nothing listens on this machine's own interfaces; the jobs run there too, as on
// a compute node. Everything is stopped by PID afterwards.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, rand } from './harness.js';
import { canMakeNetns, inHost, makeNetns, privateEtc, removeNetns, type Netns } from './netns.js';

const BINARIES = ['/usr/sbin/munged', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch'];

/** Why the Slurm suite cannot run here, or undefined when it can. */
export function slurmSkipReason(): string | undefined {
  const netns = canMakeNetns();
  if (netns) return netns;
  const missing = BINARIES.filter((file) => !existsSync(file));
  return missing.length > 0 ? `Slurm is not installed (${missing.join(', ')}); scripts/bootstrap.sh --test installs slurm-wlm and munge` : undefined;
}

/** One running single-node cluster. */
export class SlurmCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'dspool-slurm-'));
  readonly conf = join(this.dir, 'slurm.conf');
  readonly node = `dspn${rand()}`;
  readonly partition = 'debug';
  ns!: Netns;
  private etc: string | undefined;
  private munged: ChildProcess | undefined;
  private slurmctld: ChildProcess | undefined;
  private slurmd: ChildProcess | undefined;

  /** Environment for Slurm's client commands. */
  get env(): NodeJS.ProcessEnv {
    return { ...process.env, SLURM_CONF: this.conf };
  }

  async start(): Promise<void> {
    chmodSync(this.dir, 0o711);
    this.ns = makeNetns();
    const key = join(this.dir, 'munge.key');
    writeFileSync(key, randomBytes(1024), { mode: 0o400 });
    for (const sub of ['state', 'spool', 'log']) mkdirSync(join(this.dir, sub), { mode: 0o700 });
    const socket = join(this.dir, 'munge.sock');
    this.munged = this.daemon('munged', [
      '-F', '-f', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${join(this.dir, 'munged.pid')}`,
      `--seed-file=${join(this.dir, 'munged.seed')}`, `--log-file=${join(this.dir, 'log', 'munged.log')}`,
    ], false);
    await this.until(() => existsSync(socket), 'munged did not create its socket');
    const d = this.dir;
    writeFileSync(this.conf, [
      'ClusterName=dspooltest',
      // slurmctld insists on running on the host named here.
      `SlurmctldHost=${hostname().split('.')[0]}(${this.ns.address})`,
      'SlurmctldPort=6817', 'SlurmdPort=6818',
      'SlurmUser=root', 'SlurmdUser=root',
      'AuthType=auth/munge', `AuthInfo=socket=${socket}`, 'CredType=cred/munge',
      `StateSaveLocation=${d}/state`, `SlurmdSpoolDir=${d}/spool`,
      `SlurmctldPidFile=${d}/slurmctld.pid`, `SlurmdPidFile=${d}/slurmd.pid`,
      `SlurmctldLogFile=${d}/log/slurmctld.log`, `SlurmdLogFile=${d}/log/slurmd.log`,
      'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none',
      'SelectType=select/cons_tres', 'SelectTypeParameters=CR_CPU', 'SchedulerType=sched/builtin',
      'JobAcctGatherType=jobacct_gather/none', 'AccountingStorageType=accounting_storage/none',
      'MpiDefault=none', 'ReturnToService=2', 'SlurmdParameters=config_overrides',
      'SlurmctldTimeout=300', 'SlurmdTimeout=300', 'InactiveLimit=0', 'KillWait=5', 'MinJobAge=600', 'MessageTimeout=5',
      `NodeName=${this.node} NodeAddr=${this.ns.address} CPUs=8 RealMemory=4000 State=UNKNOWN`,
      `PartitionName=${this.partition} Nodes=${this.node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'));
    this.startController();
    this.slurmd = this.daemon('slurmd', ['-D', '-N', this.node], true);
    await this.until(() => this.sinfo() === 'idle', 'the node did not become idle');
  }

  /** Starts slurmctld (again): it recovers its jobs from its state directory. */
  startController(): void {
    this.slurmctld = this.daemon('slurmctld', ['-D'], true);
  }

  /** Stops slurmctld (SIGTERM: it saves its state); jobs keep running on the node. */
  async stopController(): Promise<void> {
    await stop(this.slurmctld);
    this.slurmctld = undefined;
  }

  /** The node's state as sinfo says (`idle`, `mix`, `alloc`…), or '' when the controller does not answer. */
  sinfo(): string {
    const result = spawnSync('sinfo', ['-h', '-o', '%t'], { env: this.env, encoding: 'utf8', timeout: 15_000 });
    return result.status === 0 ? result.stdout.trim() : '';
  }

  /** Runs a Slurm client command (scancel, squeue) to completion. */
  command(file: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync(file, args, { env: this.env, encoding: 'utf8', timeout: 30_000 });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  /** Daemons' logs, for failure messages. */
  logs(): string {
    return ['slurmctld.log', 'slurmd.log'].map((f) => {
      try {
        return `--- ${f}\n${readFileSync(join(this.dir, 'log', f), 'utf8').split('\n').slice(-30).join('\n')}`;
      } catch {
        return '';
      }
    }).join('\n');
  }

  /** Stops the daemons and every process left in the namespace (the jobs' too), then removes everything. */
  async stop(): Promise<void> {
    await stop(this.slurmctld);
    await stop(this.slurmd);
    if (this.ns) {
      const pids = spawnSync('ip', ['netns', 'pids', this.ns.name], { encoding: 'utf8' }).stdout.split('\n').map(Number).filter((n) => n > 0);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      removeNetns(this.ns);
    }
    await stop(this.munged);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private daemon(name: string, args: readonly string[], inNamespace: boolean): ChildProcess {
    const out = openSync(join(this.dir, 'log', `${name}.out`), 'a');
    // nsenter (not `ip netns exec`): /sys keeps its cgroup mount, which slurmd needs. The node gets its own /etc
    // (its own accounts, as a compute node has), which its jobs inherit.
    this.etc ??= privateEtc(this.dir);
    const [file, argv] = inNamespace ? inHost(this.ns, this.etc, [name, ...args]) : [name, [...args]];
    const child = spawn(file as string, argv as string[], { env: this.env, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    child.unref();
    return child;
  }

  private async until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (check()) return;
      await sleep(250);
    }
    throw new Error(`${what}\n${this.logs()}`);
  }
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  const pid = child?.pid;
  if (!pid || !alive(pid)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (alive(pid) && Date.now() < deadline) await Promise.race([exited, sleep(100)]);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  await Promise.race([exited, sleep(2000)]);
}
