#!/usr/bin/env bash
# Regenerates the torch.save seed files in fixtures/torch/ (the seeds of
# fast/tests/reliability_fuzz_files.rs) with real PyTorch (torch==2.13.0 in
# the project venv). Review the diff, then commit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
exec "$ADADELTA_PYTHON" difftest/python/gen_torch_fixtures.py "$@"
