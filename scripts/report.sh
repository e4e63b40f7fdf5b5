#!/usr/bin/env bash
# The main job: the differential report (fast vs MPFR reference vs libtorch),
# from a fresh Debian machine. Arguments go to the report binary (--help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
exec cargo run --quiet --release -p adadelta-difftest --bin report -- "$@"
