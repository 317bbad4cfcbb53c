// The behaviour every Provider must show; each engine's test runs this suite against a real engine (the local
// provider against this machine, the Slurm provider against a live single-node Slurm in test/slurm.test.ts).
import { describe, expect, it } from 'vitest';
import type { InstanceSpec, Provider } from './provider.js';

/** What the suite needs from an engine's test. */
export interface ProviderConformanceContext {
  /** A fresh, open provider. */
  make(): Promise<Provider> | Provider;
  /** A valid spec for a new instance with this id (its agent may dial a hub that never answers). */
  spec(id: string): InstanceSpec;
  /**
   * Resolves with the `Authorization` and instance headers the agent of `id` presented to the hub, proving that it
   * runs and got its join token (through its environment); undefined skips that case (stated in its title).
   */
  awaitJoin?: (id: string) => Promise<{ authorization: string; instance: string }>;
  /** Longest one case may take, in ms. */
  readonly timeoutMs: number;
}

/**
 * Registers the shared provider conformance suite.
 *
 * @example
 * describeProviderConformance('local', { make: () => new LocalProvider({ scratchDir }), spec, timeoutMs: 30_000 });
 */
export function describeProviderConformance(name: string, ctx: ProviderConformanceContext): void {
  const id = (): string => `i-c${Math.random().toString(36).slice(2, 8)}`;

  describe(`provider conformance: ${name}`, () => {
    it('lists a created instance until it is deleted, and deleting it twice resolves', async () => {
      const provider = await ctx.make();
      const instance = id();
      try {
        const made = await provider.create(ctx.spec(instance));
        expect(made.id).toBe(instance);
        expect((await provider.list()).map((i) => i.id)).toContain(instance);
        await Promise.all([provider.delete(instance, { graceMs: 2000 }), provider.delete(instance, { graceMs: 2000 })]);
        expect((await provider.list()).map((i) => i.id)).not.toContain(instance);
        await provider.delete(instance);
      } finally {
        await provider.delete(instance, { graceMs: 1000 }).catch(() => undefined);
        await provider.close();
      }
    }, ctx.timeoutMs);

    it('resolves when deleting an instance it never made', async () => {
      const provider = await ctx.make();
      await expect(provider.delete(id())).resolves.toBeUndefined();
      await provider.close();
    }, ctx.timeoutMs);

    it('refuses an instance id that is not a plain name', async () => {
      const provider = await ctx.make();
      await expect(provider.create(ctx.spec('../escape'))).rejects.toMatchObject({ code: 'invalid_instance_id' });
      await provider.close();
    }, ctx.timeoutMs);

    it('closes twice, keeps instances, and then refuses calls naming its state', async () => {
      const provider = await ctx.make();
      await provider.close();
      await provider.close();
      await expect(Promise.resolve().then(() => provider.list())).rejects.toMatchObject({ code: 'provider_closed' });
      await expect(Promise.resolve().then(() => provider.create(ctx.spec(id())))).rejects.toThrow(/closed/);
    }, ctx.timeoutMs);

    it.skipIf(!ctx.awaitJoin)(`starts an agent that dials the hub with its join token${ctx.awaitJoin ? '' : ' (skipped: this engine\'s test has no hub its agents can reach)'}`, async () => {
      const provider = await ctx.make();
      const instance = id();
      try {
        const spec = ctx.spec(instance);
        await provider.create(spec);
        const joined = await ctx.awaitJoin?.(instance);
        expect(joined).toEqual({ authorization: `Bearer ${spec.joinToken}`, instance });
      } finally {
        await provider.delete(instance, { graceMs: 2000 }).catch(() => undefined);
        await provider.close();
      }
    }, ctx.timeoutMs);
  });
}
