// Builds dist/ once before the suites run: end-to-end tests start the compiled CLI as real processes.
// DSPOOL_SKIP_BUILD=1 skips it (unit tests alone do not need dist/).
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.DSPOOL_SKIP_BUILD === '1') return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  execFileSync(process.execPath, ['scripts/copy-assets.mjs'], { stdio: 'inherit' });
}
