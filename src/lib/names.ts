// The one rule for pool usernames: valid as a Unix account name, never normalised.

/** Lowercase, starts with a letter, then letters, digits, `_` or `-`; at most 32 characters. */
export const USERNAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * Says why a username is refused, or `undefined` when it is valid. The name is never rewritten.
 *
 * @example
 * usernameProblem('alice'); // undefined
 * usernameProblem('Alice'); // 'must be lowercase …'
 */
export function usernameProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > 32) return `is ${name.length} characters long; at most 32 are allowed`;
  if (name !== name.toLowerCase()) return 'must be lowercase (it is used as a Unix account name and is never renamed)';
  if (!/^[a-z]/.test(name)) return 'must start with a lowercase letter a-z';
  if (!USERNAME_PATTERN.test(name)) return 'may only contain a-z, 0-9, "_" and "-"';
  return undefined;
}
