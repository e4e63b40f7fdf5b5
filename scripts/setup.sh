#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine. Safe to run every time; takes
# about a second once everything is installed.
#
#  * m4 (GMP's build, inside rug/gmp-mpfr-sys, needs it);
#  * for the aarch64 test run (scripts/test.sh; cargo's linker and runner for
#    that target are in .cargo/config.toml): Debian's qemu-user (qemu-aarch64),
#    gcc-aarch64-linux-gnu with libc6-dev-arm64-cross (the linker and the
#    aarch64 sysroot), and rustup's aarch64-unknown-linux-gnu target;
#  * a project-local virtualenv `.venv` with torch==2.13.0, the libtorch that
#    tch 0.26 pins.
#
# Source scripts/env.sh afterwards (the test and report scripts do) to get the
# environment tch needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_VERSION="2.13.0"
VENV="${ADADELTA_VENV:-$ROOT/.venv}"
PYTHON_BOOTSTRAP="${PYTHON_BOOTSTRAP:-python3}"

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""
apt_install() {
  log "installing $* with apt-get"
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v m4 >/dev/null 2>&1; then
  apt_install m4 # GMP's build (inside rug) needs it
fi

if ! command -v cargo >/dev/null 2>&1; then
  log "cargo not found: install a Rust toolchain (https://rustup.rs) first"
  exit 1
fi

# The aarch64 build, tested under qemu-user. No recommends: qemu-user's
# (qemu-user-binfmt) would register binfmt handlers, which cargo's runner
# does not need and a container may refuse.
AARCH64_TARGET="aarch64-unknown-linux-gnu"
AARCH64_APT=()
command -v qemu-aarch64 >/dev/null 2>&1 || AARCH64_APT+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || AARCH64_APT+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so ] || AARCH64_APT+=(libc6-dev-arm64-cross)
if [ "${#AARCH64_APT[@]}" -gt 0 ]; then
  apt_install --no-install-recommends "${AARCH64_APT[@]}"
fi
if ! command -v rustup >/dev/null 2>&1; then
  log "rustup not found: the aarch64 target is added with rustup (https://rustup.rs)"
  exit 1
fi
# Captured first: grep -q closing the pipe early would fail it under pipefail.
RUST_TARGETS="$(rustup target list --installed)"
if ! grep -qx "$AARCH64_TARGET" <<<"$RUST_TARGETS"; then
  log "adding the rustup target $AARCH64_TARGET"
  rustup target add "$AARCH64_TARGET"
fi

have_torch() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c "import torch,numpy,sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" \
      >/dev/null 2>&1
}

if ! have_torch; then
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    if ! "$PYTHON_BOOTSTRAP" -m venv "$VENV"; then
      # Debian's python3 splits venv/ensurepip into python3-venv.
      rm -rf "$VENV"
      apt_install python3-venv
      "$PYTHON_BOOTSTRAP" -m venv "$VENV"
    fi
  fi
  log "installing torch==$TORCH_VERSION into $VENV (about a minute, 4.7 GB)"
  "$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION" numpy
  have_torch || { log "torch $TORCH_VERSION did not import after install"; exit 1; }
fi
log "ready: m4, qemu-aarch64, aarch64-linux-gnu-gcc, rustup target $AARCH64_TARGET, $("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null)"
