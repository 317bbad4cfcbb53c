// A wait that its owner can cut short: loops with back-off (mounting the share, joining the hub) sleep in one, and
// their `close()` ends the sleep instead of waiting it out.

/**
 * One sleep at a time, which `wake()` ends early.
 *
 * @example
 * const pause = new Pause();
 * setTimeout(() => pause.wake(), 10);
 * await pause.for(60_000); // returns after ~10 ms
 */
export class Pause {
  #wake: (() => void) | undefined;

  /** Resolves after `ms`, or as soon as `wake()` is called. */
  async for(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  /** Ends the current sleep, if there is one. */
  wake(): void {
    this.#wake?.();
  }
}
