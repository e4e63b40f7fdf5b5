#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: set-up (idempotent),
# formatting, lints, then every test of the workspace (unit, property,
# differential against real PyTorch, doc tests), then the adadelta crate for
# aarch64 under qemu-user.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
# A full run builds ~85 test binaries for two targets: incremental caches
# would add gigabytes that one clean run never reuses. Set CARGO_INCREMENTAL=1
# to keep them when iterating.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h "${CARGO_TARGET_DIR:-$ROOT/target}" 2>/dev/null || df -h "$ROOT"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# --all-features: the candle and tch adapters, their tests and examples.
cargo test --workspace --all-features "$@"

# The aarch64 build (the NEON kernel path), cross-compiled and run under
# qemu-user: the linker and runner are in .cargo/config.toml, the tools come
# from scripts/setup.sh. Features: the default ones plus ndarray (the crate's
# dev-dependency on itself turns it on for the tests anyway); not tch
# (libtorch is x86_64 here), nor candle (about 17 more minutes of aarch64
# build, for an adapter with no arch-specific code). "$@" stays with the
# native run.
AARCH64=(-p adadelta --target aarch64-unknown-linux-gnu --features ndarray)
cargo clippy "${AARCH64[@]}" --all-targets -- -D warnings
# Skipped under qemu-user only, for reasons of the emulator, not the code:
#  * the first five re-run the test binary as a child process (current_exe):
#    the kernel refuses to exec an aarch64 binary without a binfmt_misc
#    handler (ENOEXEC; the child exits 127), and registering one needs
#    privileges a container or CI runner may not have;
#  * the last one reserves 2 x 42 TiB of MAP_NORESERVE address space, which
#    makes qemu-user's bookkeeping of the guest's pages grow past 24 GiB of
#    RSS, until the OOM killer ends the whole test binary.
# Each runs natively above.
cargo test "${AARCH64[@]}" -- --exact \
  --skip env_var_forces_path \
  --skip hostile_json_files_take_at_most_4_5_times_their_size_plus_24_mib_in_peak_memory \
  --skip hostile_json_under_a_memory_limit_gives_an_error_not_an_abort \
  --skip a_save_killed_at_any_moment_leaves_the_old_or_the_new_checkpoint \
  --skip concurrent_savers_in_several_processes_never_remove_each_others_temporaries \
  --skip state_that_cannot_be_allocated_is_a_typed_error_and_changes_nothing
du -sh "${CARGO_TARGET_DIR:-$ROOT/target}"
