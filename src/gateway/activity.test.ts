import { describe, expect, it } from 'vitest';
import { PersonActivity, isPersonRequest, type RequestFacts } from './activity.js';

const browser = (method: string, path: string, fetchMode = 'cors', accept = '*/*'): RequestFacts => ({ method, path, upgrade: false, fetchMode, accept });

describe('requests a person made, as the gateway tells them from traffic', () => {
  it('does not count what idle open tabs send on their own', () => {
    for (const path of ['api/contents/notebooks?type=directory&_=1', 'api/kernels', 'api/sessions', 'api/terminals', 'api/contents/a.ipynb/checkpoints', 'static/base/js/x.js', 'api/kernelspecs']) {
      expect(isPersonRequest(browser('GET', path)), path).toBe(false);
    }
    // Kernel and terminal WebSockets, reconnecting after a network blip or a laptop waking up.
    expect(isPersonRequest({ method: 'GET', path: 'api/kernels/k1/channels', upgrade: true, fetchMode: 'websocket', accept: '' })).toBe(false);
  });

  it('counts opening or reloading a page, saving, running and deleting', () => {
    expect(isPersonRequest(browser('GET', 'notebooks/a.ipynb', 'navigate', 'text/html'))).toBe(true);
    expect(isPersonRequest(browser('PUT', 'api/contents/a.ipynb'))).toBe(true);
    expect(isPersonRequest(browser('POST', 'api/sessions'))).toBe(true);
    expect(isPersonRequest(browser('POST', 'api/kernels/k1/interrupt'))).toBe(true);
    expect(isPersonRequest(browser('DELETE', 'api/contents/old.ipynb'))).toBe(true);
  });

  it('judges clients that do not say how they fetch by what they ask for', () => {
    const plain = (path: string, accept: string): RequestFacts => ({ method: 'GET', path, upgrade: false, fetchMode: undefined, accept });
    expect(isPersonRequest(plain('api/kernels', 'application/json'))).toBe(false);
    expect(isPersonRequest(plain('tree', 'text/html,application/xhtml+xml'))).toBe(true);
    expect(isPersonRequest(plain('files/data.csv', '*/*'))).toBe(true);
    expect(isPersonRequest(plain('static/x.css', 'text/html'))).toBe(false);
  });

  it('hands out the last request per user once', () => {
    const seen = new PersonActivity();
    expect(seen.take()).toBeUndefined();
    seen.note('alice', Date.parse('2026-12-01T10:00:00Z'));
    seen.note('alice', Date.parse('2026-12-01T10:00:05Z'));
    seen.note('bob', Date.parse('2026-12-01T10:00:01Z'));
    expect(seen.take()).toEqual({ alice: '2026-12-01T10:00:05.000Z', bob: '2026-12-01T10:00:01.000Z' });
    expect(seen.take()).toBeUndefined();
  });
});
