#!/usr/bin/env bash
# Installs what the tests need, type-checks everything (tests included) and runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
npx tsc -p tsconfig.json --noEmit
npx vitest run "$@"
