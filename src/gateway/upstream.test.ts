import { describe, expect, it } from 'vitest';
import { backendOf, downstreamHeaders } from './upstream.js';

describe('upstream helpers', () => {
  it('reads a backend out of http, https and IPv6 URLs, with default ports', () => {
    expect(backendOf(new URL('http://127.0.0.1:8888/user/a/'))).toEqual({ secure: false, hostname: '127.0.0.1', port: 8888, origin: 'http://127.0.0.1:8888' });
    expect(backendOf(new URL('https://hub.example'))).toEqual({ secure: true, hostname: 'hub.example', port: 443, origin: 'https://hub.example' });
    expect(backendOf(new URL('http://[::1]/'))).toEqual({ secure: false, hostname: '::1', port: 80, origin: 'http://[::1]' });
  });

  it('drops hop-by-hop response headers and keeps repeated ones', () => {
    const headers = { 'set-cookie': ['a=1', 'b=2'], connection: 'keep-alive', 'keep-alive': 'timeout=5', 'content-type': 'text/plain' };
    expect(downstreamHeaders(headers)).toEqual({ 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
    expect(headers.connection).toBe('keep-alive');
  });
});
