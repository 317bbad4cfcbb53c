import { describe, expect, it } from 'vitest';
import { sameSecret } from './secret.js';

describe('sameSecret', () => {
  it('is true only for equal secrets, whatever their lengths', () => {
    expect(sameSecret('s3cret-token', 's3cret-token')).toBe(true);
    expect(sameSecret('s3cret-token', 's3cret-tokem')).toBe(false);
    expect(sameSecret('s3cret-token', 's3cret-token-longer')).toBe(false);
    expect(sameSecret('', 'x')).toBe(false);
    expect(sameSecret('é', 'e\u0301')).toBe(false);
  });
});
