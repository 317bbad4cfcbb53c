import { describe, expect, it } from 'vitest';
import { InvalidTransitionError } from '../../lib/state.js';
import { nextInstanceState } from '../instances/state.js';
import { nextSessionState } from './state.js';

describe('session lifecycle', () => {
  it('goes pending → starting → running → stopping → stopped', () => {
    expect(nextSessionState('pending', 'starting')).toBe('starting');
    expect(nextSessionState('starting', 'running')).toBe('running');
    expect(nextSessionState('running', 'stopping')).toBe('stopping');
    expect(nextSessionState('stopping', 'stopped')).toBe('stopped');
  });
  it('never leaves an ended state', () => {
    expect(() => nextSessionState('stopped', 'running')).toThrow(InvalidTransitionError);
    expect(() => nextSessionState('failed', 'starting')).toThrow(/cannot go from "failed" to "starting"/);
  });
  it('cannot run before it was placed', () => {
    expect(() => nextSessionState('pending', 'running')).toThrow(InvalidTransitionError);
  });
});

describe('instance lifecycle', () => {
  it('joins, loses its agent, and comes back', () => {
    expect(nextInstanceState('starting', 'ready')).toBe('ready');
    expect(nextInstanceState('ready', 'unreachable')).toBe('unreachable');
    expect(nextInstanceState('unreachable', 'ready')).toBe('ready');
  });
  it('is only deleted after stopping', () => {
    expect(() => nextInstanceState('ready', 'deleted')).toThrow(InvalidTransitionError);
    expect(nextInstanceState('stopping', 'deleted')).toBe('deleted');
  });
});
