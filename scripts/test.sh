#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: set-up (idempotent),
# formatting, lints, then every test of the workspace (unit, property,
# differential against real PyTorch, doc tests).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# --all-features: the candle and tch adapters, their tests and examples.
cargo test --workspace --all-features "$@"
