// Addresses written into URLs: an IPv6 literal needs brackets there (`http://[::1]:8000`), a name or IPv4 does not.

/**
 * `host` as the host part of a URL.
 *
 * @example
 * urlHost('::1');       // '[::1]'
 * urlHost('127.0.0.1'); // '127.0.0.1'
 */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * The host of `url` as an address to dial: `url.hostname` without the brackets of an IPv6 literal.
 *
 * @example
 * hostOfUrl(new URL('https://[::1]:8082/')); // '::1'
 */
export function hostOfUrl(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}
