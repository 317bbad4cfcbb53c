#!/usr/bin/env bash
# Installs what the tests need, type-checks everything (tests included) and runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
npx tsc -p tsconfig.json --noEmit
# Suites that assert latency under an attack run on their own, after the rest: beside another suite on two cores they
# would measure that suite's load, not the pool's (README, "Security: what the API and the front door guarantee").
SOLO=(test/isolation-api.test.ts)
if [ $# -gt 0 ]; then
  npx vitest run "$@"
else
  npx vitest run --exclude "${SOLO[@]}"
  npx vitest run "${SOLO[@]}"
fi
