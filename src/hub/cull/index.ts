/**
 * The idle culler: idle means "no work" (a kernel executing, a terminal or SSH foreground job or keystrokes, a
 * request a person made), never "no traffic". `decideCull` is the rule as a pure function of the signals and the
 * clock; `Culler` keeps the signals, warns, asks open pages to save and stops.
 *
 * @example
 * import { Culler, decideCull } from './cull/index.js';
 * decideCull({ startedMs: 0, busy: false, exempt: false }, { idleTimeoutMs: 60_000, warnBeforeMs: 10_000 }, undefined, 55_000);
 * @module
 */
export { Culler, DEFAULT_EXTENSION_MS, MAX_EXTENSION_MS, humanDuration, type CullFields, type CullState, type CullerContext } from './culler.js';
export { decideCull, type CullPolicy, type CullVerdict, type GivenWarning, type IdleSignals, type KeepReason } from './decide.js';
export { NoServerToExtendError } from './errors.js';
