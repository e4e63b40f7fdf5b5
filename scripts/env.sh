# Source this (after scripts/setup.sh) to get the environment tch needs:
#   LIBTORCH_USE_PYTORCH=1 with the project venv active, so torch-sys links the
#   libtorch inside torch==2.13.0. difftest's build script also writes an rpath
#   to torch's lib/ into its binaries; LD_LIBRARY_PATH is set too so that any
#   other binary (a user's example, a bench) starts without more exports.
ADADELTA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="${ADADELTA_VENV:-$ADADELTA_ROOT/.venv}"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export ADADELTA_PYTHON="$VIRTUAL_ENV/bin/python"
_torch_lib="$("$VIRTUAL_ENV/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$_torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _torch_lib
