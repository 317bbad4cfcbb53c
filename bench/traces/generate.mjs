// Writes the two shipped traces (seeded, so the files are reproducible): a team's workday with a morning burst,
// and a class of 60 starting at once. Run: node bench/traces/generate.mjs
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const dir = import.meta.dirname;
const clock = (min) => `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(Math.floor(min % 60)).padStart(2, '0')}:${String(Math.floor((min * 60) % 60)).padStart(2, '0')}`;
const between = (r, a, b) => a + (b - a) * r();
/** Roughly bell-shaped between a and b (mean of three uniforms). */
const around = (r, a, b) => a + ((b - a) * (r() + r() + r())) / 3;

{
  const r = seeded(2026);
  const lines = [{ trace: 'workday: a team of 40, morning burst, lunch, afternoon, ad-hoc sessions', start: '2026-01-05T00:00:00+01:00', timeZone: 'Europe/Stockholm' }];
  for (let i = 1; i <= 30; i++) {
    const user = `dev${String(i).padStart(2, '0')}`;
    const arrive = around(r, 7 * 60 + 50, 9 * 60 + 40);
    const lunch = around(r, 11 * 60 + 30, 12 * 60 + 30);
    lines.push({ at: clock(arrive), user, duration: `${Math.round(lunch - arrive)}m`, cpu: Math.round(between(r, 0.1, 1.5) * 100) / 100 });
    const back = lunch + around(r, 35, 75);
    const leave = around(r, 15 * 60 + 30, 17 * 60 + 45);
    lines.push({ at: clock(back), user, duration: `${Math.round(leave - back)}m`, cpu: Math.round(between(r, 0.1, 1.5) * 100) / 100 });
  }
  for (let i = 1; i <= 10; i++) {
    const user = `ana${String(i).padStart(2, '0')}`;
    const n = 2 + Math.floor(r() * 3);
    for (let k = 0; k < n; k++) {
      const at = between(r, 8 * 60 + 30, 16 * 60 + 30);
      lines.push({ at: clock(at), user, duration: `${Math.round(between(r, 20, 90))}m`, cpu: Math.round(between(r, 0.2, 2) * 100) / 100 });
    }
  }
  const sessions = lines.slice(1).sort((a, b) => a.at.localeCompare(b.at));
  writeFileSync(join(dir, 'workday.jsonl'), `${[lines[0], ...sessions].map((l) => JSON.stringify(l)).join('\n')}\n`);
}
{
  const r = seeded(60);
  const lines = [{ trace: 'class: 60 students start at 10:00, 90 minutes', start: '2026-01-05T00:00:00+01:00', timeZone: 'Europe/Stockholm' }];
  lines.push({ at: '09:40:00', user: 'teacher', duration: '2h10m', cpu: 0.3 });
  for (let i = 1; i <= 60; i++) {
    const at = 10 * 60 + between(r, 0, 1.5);
    lines.push({ at: clock(at), user: `student${String(i).padStart(2, '0')}`, duration: `${Math.round(around(r, 80, 95))}m`, cpu: Math.round(between(r, 0.2, 0.8) * 100) / 100 });
  }
  const sessions = lines.slice(1).sort((a, b) => a.at.localeCompare(b.at));
  writeFileSync(join(dir, 'class.jsonl'), `${[lines[0], ...sessions].map((l) => JSON.stringify(l)).join('\n')}\n`);
}
