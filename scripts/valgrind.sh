#!/usr/bin/env bash
# Memory check of the fast crate's SIMD kernel under valgrind memcheck
# (fast/docs/reliability.md). Miri and -Zsanitizer need a nightly toolchain; this
# runs on stable.
#
# Builds the `adadelta` test binaries (test profile: optimised, with debug
# info) and runs them under `valgrind --tool=memcheck` once per kernel path
# (ADADELTA_KERNEL=scalar, avx2, avx512), with proptest and fuzz case counts
# lowered to fit valgrind's ~50x slowdown. The binaries exercise every
# dispatch path and square root explicitly as well (reliability_memory,
# kernel_paths), on unaligned slices of every length 0..70 and odd lengths
# up to 65,537, on several threads, and the optimizer end to end.
#
# A path that valgrind's emulated CPU lacks is reported and skipped:
# valgrind (3.19 and later releases) implements no AVX-512, so under it the
# avx512 path is not available. That path's memory accesses are checked
# natively by the guard-page test (`cargo test -p adadelta --test
# reliability_memory`).
#
# Usage: scripts/valgrind.sh [kernel...]   (default: scalar avx2 avx512)
# Env:   VALGRIND_FLAGS (extra flags, e.g. --track-origins=yes),
#        VALGRIND_PROPTEST_CASES (default 64), VALGRIND_FUZZ_CASES (default 5000).
# Logs:  target/valgrind/<kernel>-<binary>.log; exit status non-zero on any
#        memcheck error or test failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

command -v valgrind >/dev/null || {
  echo "valgrind is not installed (Debian: apt-get install valgrind)" >&2
  exit 2
}
KERNELS=("$@")
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(scalar avx2 avx512)
CASES="${VALGRIND_PROPTEST_CASES:-64}"
FUZZ="${VALGRIND_FUZZ_CASES:-5000}"
LOGS="$ROOT/target/valgrind"
mkdir -p "$LOGS"

# The test binaries, by name.
declare -A BIN
while IFS=' ' read -r name path; do
  BIN[$name]="$path"
done < <(cargo test -p adadelta --tests --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] in (["test"], ["lib"]):
        print(m["target"]["name"], m["executable"])
')

# name | environment | test arguments
RUNS=(
  "reliability_memory||"
  "kernel_paths|PROPTEST_CASES=$CASES|--skip env_var_forces_path"
  "reliability_nonfinite||"
  "reliability_inputs|PROPTEST_CASES=$CASES|"
  "reliability_scale||--skip state_that_cannot_be_allocated"
  "reliability_fuzz|ADADELTA_FUZZ_CASES=$FUZZ|"
  "api_step||"
  "api_state_dict||"
  "api_groups||"
  "api_example||"
  "adadelta||"
)
# Not run: reliability_kill (its children are killed mid-write on purpose)
# and, in reliability_scale, the 42 TiB address-space reservation (more than
# valgrind's address-space manager allows) and `env_var_forces_path` (its
# children run natively, where the CPU has paths valgrind's lacks).

VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
  ${VALGRIND_FLAGS:-})

status=0
printf '\n| kernel | binary | tests | memcheck errors | time |\n|---|---|---|---|---|\n' >"$LOGS/summary.md"
# Which paths does valgrind's emulated CPU have? The guard-page test prints
# the paths it covered.
probe="$LOGS/probe.log"
ADADELTA_KERNEL=scalar "${VG[@]}" --log-file=/dev/null "${BIN[reliability_memory]}" \
  --exact guard_pages_around_every_slice_on_every_path --nocapture >"$probe" 2>&1 || true
for k in "${KERNELS[@]}"; do
  if ! grep -qi "paths \[.*\b${k}\b" "$probe"; then
    echo "== $k: not available under valgrind ($(grep -o 'paths \[[^]]*\]' "$probe" || echo 'probe failed')); skipped" |
      tee -a "$LOGS/summary.md"
    continue
  fi
  for run in "${RUNS[@]}"; do
    IFS='|' read -r name env args <<<"$run"
    log="$LOGS/$k-$name.log"
    echo "== ADADELTA_KERNEL=$k $name ($log)"
    start=$(date +%s)
    # shellcheck disable=SC2086
    if env ADADELTA_KERNEL="$k" $env "${VG[@]}" --log-file="$log.vg" "${BIN[$name]}" \
      --test-threads=2 $args >"$log" 2>&1; then
      rc=0
    else
      rc=$?
      status=1
    fi
    cat "$log.vg" >>"$log" && rm -f "$log.vg"
    errors=$(grep -ho 'ERROR SUMMARY: [0-9]*' "$log" | awk '{s += $3} END {print s + 0}')
    tests=$(grep -ho 'test result: [a-zA-Z]*\. [0-9]* passed; [0-9]* failed' "$log" | head -1 |
      sed 's/test result: [a-zA-Z]*\. //; s/;/,/')
    line="| $k | $name | ${tests:-none (exit $rc)} | $errors | $(($(date +%s) - start)) s |"
    echo "$line" | tee -a "$LOGS/summary.md"
    [ "$rc" = 0 ] || echo "   FAILED (exit $rc), see $log"
  done
done
echo
cat "$LOGS/summary.md"
exit $status
