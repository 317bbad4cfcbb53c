import { describe, expect, it } from 'vitest';
import { OutputTail, redact } from './output.js';

describe('OutputTail', () => {
  it('redacts a secret even when it arrives split across chunks', () => {
    const lines: string[] = [];
    const tail = new OutputTail(['s3cret-token'], 10, (line) => lines.push(line));
    tail.push('url ?token=s3cr');
    tail.push('et-token done\nnext');
    tail.end();
    expect(lines).toEqual(['url ?token=[redacted] done', 'next']);
    expect(tail.text()).not.toContain('s3cret');
  });

  it('keeps only the last lines', () => {
    const tail = new OutputTail([], 2);
    tail.push('a\nb\nc\n');
    expect(tail.text()).toBe('b\nc');
  });

  it('leaves text without secrets alone', () => {
    expect(redact('plain', ['', 'x-secret'])).toBe('plain');
  });
});
