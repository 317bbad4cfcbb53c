import { describe, expect, it } from 'vitest';
import { hostOfUrl, urlHost } from './address.js';

describe('urlHost', () => {
  it('brackets an IPv6 literal and leaves names and IPv4 as they are, so new URL() takes them', () => {
    expect(urlHost('::1')).toBe('[::1]');
    expect(urlHost('fd00::5')).toBe('[fd00::5]');
    expect(urlHost('198.18.0.2')).toBe('198.18.0.2');
    expect(urlHost('pool.example')).toBe('pool.example');
    for (const host of ['::1', '198.18.0.2', 'pool.example']) expect(new URL(`http://${urlHost(host)}:8000/`).port).toBe('8000');
  });

  it('gives back the address of a URL built with it (hostOfUrl)', () => {
    for (const host of ['::1', 'fd00::5', '198.18.0.2', 'pool.example']) expect(hostOfUrl(new URL(`https://${urlHost(host)}:8082/x`))).toBe(host);
  });
});
