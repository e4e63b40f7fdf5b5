#!/usr/bin/env python3
"""Run real ``torch.optim.Adadelta`` on differential-test cases.

Input (a file given as the only positional argument, or stdin): a JSON list of
WireCase objects (see ``difftest/src/case.rs``)::

    {"name": str,
     "dtype": "float32" | "float64" | "bfloat16" | "float16",  # optional, float32 when absent
     "hyper": {"lr": float, "rho": float, "eps": float,
               "weight_decay": float, "maximize": bool,
               "foreach": bool},                       # optional, false when absent
     "params": [[bits, ...], ...],          # bit patterns of dtype, one list per param
     "grads": [[[bits, ...] | null, ...], ...]}  # [step][param], null = no grad

Output (stdout): a JSON list with one entry per case; each entry is a list of
WireSnapshot objects, one after every step::

    {"params": [[bits...]...], "square_avg": [[bits...] | null ...],
     "acc_delta": [[bits...] | null ...], "step": [u32 | null ...]}

Every float travels as its IEEE-754 bit pattern (an unsigned 32-bit integer
for float32, 64-bit for float64; the step counter is float32 whatever the
dtype), so nothing is lost to decimal printing; patterns with the sign bit
set (negative floats) round-trip through an explicit two's-complement
conversion.

The optimizer is built with ``foreach`` left at its default (``None``), which
resolves to False on CPU, or with ``foreach=True`` where the case's hyper says
so; the script wraps the module's
``_single_tensor_adadelta``/``_multi_tensor_adadelta`` to count calls and
asserts that only the path asked for ran whenever some param has a
gradient. (In a step where no param has one, ``foreach`` resolves to True,
since ``all()`` over the empty param list is True, and the multi-tensor
function runs on empty lists: a no-op.)

Options:
    --info         print {"torch_version", "cpu_capability", "num_threads",
                   "mkl_version"} as JSON and exit.
    --threads N    call torch.set_num_threads(N) first (default: torch's own
                   default, i.e. the number of cores).
"""

import argparse
import ctypes
import json
import os
import sys

import torch
import torch.optim.adadelta as _adadelta_mod

_INT_OF = {
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.bfloat16: torch.int16,
    torch.float16: torch.int16,
}
_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def bits_to_tensor(bits, dtype=torch.float32):
    """Bit patterns (unsigned ints of the dtype's width) -> 1-D contiguous CPU tensor of `dtype`."""
    width = torch.finfo(dtype).bits
    signed = [b - (1 << width) if b >> (width - 1) else b for b in bits]
    return torch.tensor(signed, dtype=_INT_OF[dtype]).view(dtype).clone()


def tensor_to_bits(t):
    """A float tensor -> list of its bit patterns as unsigned ints (flattened)."""
    t = t.detach().contiguous().reshape(-1)
    assert t.dtype in _INT_OF, t.dtype
    mask = (1 << torch.finfo(t.dtype).bits) - 1
    return [v & mask for v in t.view(_INT_OF[t.dtype]).tolist()]


def scalar_bits(t):
    """0-dim float32 tensor -> its bit pattern as a u32 int."""
    assert t.dtype == torch.float32 and t.dim() == 0, (t.dtype, t.shape)
    return t.reshape(1).view(torch.int32).item() & 0xFFFFFFFF


def mkl_version():
    """MKL's version string via MKL_Get_Version_String in libtorch_cpu.so."""
    lib = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    try:
        cdll = ctypes.CDLL(lib)
        fn = cdll.MKL_Get_Version_String
    except (OSError, AttributeError):
        for line in torch.__config__.show().splitlines():
            if "Math Kernel Library" in line:
                return line.strip(" -")
        return None
    buf = ctypes.create_string_buffer(512)
    fn.argtypes = [ctypes.c_char_p, ctypes.c_int]
    fn.restype = None
    fn(buf, len(buf))
    return buf.value.decode(errors="replace").strip()


def info():
    """Torch version, CPU capability, thread count and MKL version."""
    return {
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "mkl_version": mkl_version(),
    }


_CALLS = {"single": 0, "multi": 0}


def _install_path_counters():
    single = _adadelta_mod._single_tensor_adadelta
    multi = _adadelta_mod._multi_tensor_adadelta

    def counted_single(*a, **k):
        _CALLS["single"] += 1
        return single(*a, **k)

    def counted_multi(*a, **k):
        _CALLS["multi"] += 1
        return multi(*a, **k)

    _adadelta_mod._single_tensor_adadelta = counted_single
    _adadelta_mod._multi_tensor_adadelta = counted_multi


def run_case(case):
    """Run one WireCase, return its list of WireSnapshots."""
    h = case["hyper"]
    dtype = _DTYPES[case.get("dtype", "float32")]
    params = [bits_to_tensor(p, dtype).requires_grad_(True) for p in case["params"]]
    opt = torch.optim.Adadelta(
        params,
        lr=h["lr"],
        rho=h["rho"],
        eps=h["eps"],
        weight_decay=h["weight_decay"],
        maximize=h["maximize"],
        foreach=True if h.get("foreach") else None,
    )
    foreach = bool(h.get("foreach"))
    assert opt.param_groups[0]["foreach"] is (True if foreach else None)
    out = []
    for step_grads in case["grads"]:
        if len(step_grads) != len(params):
            raise ValueError(
                f"case {case['name']!r}: {len(step_grads)} grads for {len(params)} params"
            )
        any_grad = False
        for p, g in zip(params, step_grads):
            if g is None:
                p.grad = None
            else:
                if len(g) != p.numel():
                    raise ValueError(f"case {case['name']!r}: grad length {len(g)} != {p.numel()}")
                p.grad = bits_to_tensor(g, dtype)
                any_grad = True
        before = dict(_CALLS)
        opt.step()
        if any_grad and foreach:
            assert _CALLS["multi"] == before["multi"] + 1, "multi-tensor path did not run"
            assert _CALLS["single"] == before["single"], "single-tensor path ran"
        elif any_grad:
            assert _CALLS["single"] == before["single"] + 1, "single-tensor path did not run"
            assert _CALLS["multi"] == before["multi"], "multi-tensor (foreach) path ran"
        # With no gradient at all the param list is empty, and
        # _default_to_fused_or_foreach's all() over it says foreach=True: the
        # multi-tensor function then runs on empty lists, a no-op.
        snap = {"params": [], "square_avg": [], "acc_delta": [], "step": []}
        for p in params:
            snap["params"].append(tensor_to_bits(p))
            st = opt.state.get(p)
            if st:
                snap["square_avg"].append(tensor_to_bits(st["square_avg"]))
                snap["acc_delta"].append(tensor_to_bits(st["acc_delta"]))
                snap["step"].append(scalar_bits(st["step"]))
            else:
                snap["square_avg"].append(None)
                snap["acc_delta"].append(None)
                snap["step"].append(None)
        out.append(snap)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", help="JSON file of WireCase list (default: stdin)")
    ap.add_argument("--info", action="store_true", help="print torch/CPU/MKL info and exit")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.info:
        json.dump(info(), sys.stdout)
        sys.stdout.write("\n")
        return
    # Warm up MKL VML's sqrt dispatch on one thread before any multi-threaded
    # sqrt (pytorch#188792: concurrent first calls can pick a wrong kernel).
    torch.sqrt(torch.ones(1))
    _install_path_counters()
    if args.input is None or args.input == "-":
        cases = json.load(sys.stdin)
    else:
        with open(args.input) as f:
            cases = json.load(f)
    with torch.no_grad():
        result = [run_case(c) for c in cases]
    json.dump(result, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
