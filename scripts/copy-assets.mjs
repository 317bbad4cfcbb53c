#!/usr/bin/env node
// Copies what tsc does not: the Python files under src/ (the agent's fork server) into the build's outDir.
//   node scripts/copy-assets.mjs [outDir]   (default dist)
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? join(root, 'dist');
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== '__pycache__') walk(full);
    else if (entry.isFile() && entry.name.endsWith('.py')) {
      const target = join(out, relative(join(root, 'src'), full));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(full, target);
    }
  }
};
walk(join(root, 'src'));
