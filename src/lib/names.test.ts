import { describe, expect, it } from 'vitest';
import { usernameProblem } from './names.js';

describe('usernameProblem', () => {
  it('accepts Unix-style lowercase names', () => {
    for (const name of ['alice', 'a', 'bob_2', 'data-sci', 'a'.repeat(32)]) expect(usernameProblem(name)).toBeUndefined();
  });
  it('refuses names it would otherwise have to rename, saying why', () => {
    expect(usernameProblem('Alice')).toMatch(/lowercase/);
    expect(usernameProblem('../x')).toMatch(/start with/);
    expect(usernameProblem('a b')).toMatch(/only contain/);
    expect(usernameProblem('a'.repeat(40))).toMatch(/40 characters/);
    expect(usernameProblem('')).toMatch(/empty/);
    expect(usernameProblem('1abc')).toMatch(/start with/);
  });
});
