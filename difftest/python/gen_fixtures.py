#!/usr/bin/env python3
"""Regenerate the golden fixtures in ``fixtures/`` from real ``torch.optim.Adadelta``.

Run it through ``./scripts/regen-fixtures.sh`` (which sets up the project venv
with torch==2.13.0); it writes ``fixtures/adadelta/<scenario>.json`` and
``fixtures/MANIFEST.json``, printing progress on stderr.

Every scenario is run eight ways: float32, float64, bfloat16 and float16
parameters, each with PyTorch's default ``foreach=None`` (on CPU the for-loop,
``_single_tensor_adadelta``) and with ``foreach=True``
(``_multi_tensor_adadelta``); the generator checks which of the two ran. The
float32 fixtures are listed under ``fixtures`` in the manifest, the others
under ``fixtures_float64``, ``fixtures_bfloat16`` and ``fixtures_float16``.
One intra-op thread: where PyTorch computes a 16-bit tensor's elements in
scalar code depends on the thread count for tensors of 32768 elements or
more (these are all smaller).

Each fixture holds a scenario (param groups with their hyperparameters,
initial parameters, the gradient of every parameter at every step, ``null``
when absent) and what PyTorch produced after every step: the parameters and
the full ``state_dict()`` (PyTorch's layout: ``state`` keyed by integer index
with ``step``, ``square_avg``, ``acc_delta``; ``param_groups`` with every
hyperparameter key and ``params`` index lists). Every value is stored as its
bit pattern (``bits``: u32 for float32, u64 for float64, u16 for
bfloat16 and float16) beside a readable
decimal (``values``; non-finite values as the strings "nan", "inf", "-inf").
Replay reads only the bits. The step counter is float32 for every dtype, as
PyTorch keeps it (``_get_scalar_dtype()`` under the default dtype).

``generated_by`` records the program, the torch version, the CPU capability,
MKL's version and the **sqrt flavour**: how libtorch's f32 ``sqrt`` rounds on
the generating machine (classified over 2^20 inputs of [1, 4), plus a probe of
inputs and outputs that replay compares with the current machine's libtorch),
and the same for float64 (``sqrt_flavour_float64``, classified against
Python's correctly rounded ``math.sqrt``; its probe holds inputs where
libtorch is not correctly rounded, which tells oneMKL's recipes apart).
"""

import io
import json
import math
import os
import platform
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_adadelta  # noqa: E402
from torch_adadelta import bits_to_tensor, mkl_version, scalar_bits, tensor_to_bits  # noqa: E402

FORMAT = "adadelta-rs fixture v1"
HYPER_KEYS = ("lr", "rho", "eps", "weight_decay", "maximize")


def readable(x):
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return x


def tensor_json(t):
    t = t.detach().contiguous()
    return {
        "shape": list(t.shape),
        "bits": tensor_to_bits(t),
        "values": [readable(v) for v in t.reshape(-1).tolist()],
    }


def dumps(obj):
    """Indented JSON with every innermost array (numbers, strings) on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[([^\[\]{}]*)\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def sqrt_flavour():
    """Classify libtorch's f32 sqrt against the correctly rounded root."""
    lo, hi = 0x3F800000, 0x40800000  # [1, 4)
    bits = torch.arange(lo, hi, 16, dtype=torch.int64).to(torch.int32)
    x = bits.view(torch.float32)
    got = torch.sqrt(x).view(torch.int32).to(torch.int64)
    exact = torch.sqrt(x.double()).float().view(torch.int32).to(torch.int64)  # f64 sqrt then RN: correctly rounded
    d = got - exact
    high, low, other = int((d == 1).sum()), int((d == -1).sum()), int(((d != 0) & (d.abs() != 1)).sum())
    if high == low == other == 0:
        name = "correctly-rounded"
    elif other == 0 and high == 0:
        name = "mkl-rsqrt14-newton (1 ulp low only; oneMKL Z0HA, Intel AVX-512)"
    elif other == 0:
        name = "mkl-rsqrtps (within 1 ulp both ways; oneMKL EX kernel, e.g. AMD)"
    else:
        name = "unknown"
    # A probe for replay: inputs spread over [1,4) and the tiny range, with libtorch's outputs.
    probe_bits = [0x3F800000 + k * 0x1FFFF for k in range(0, 128)] + [0x00800000 + k * 0x7FFFF for k in range(0, 64)]
    probe = bits_to_tensor(probe_bits)
    return {
        "name": name,
        "classified_over": f"{x.numel()} inputs of [1,4) (every 16th f32)",
        "one_ulp_high": high,
        "one_ulp_low": low,
        "more_than_one_ulp": other,
        "probe_inputs": probe_bits,
        "probe_outputs": tensor_to_bits(torch.sqrt(probe)),
    }


def sqrt_flavour_float64():
    """Classify libtorch's float64 sqrt against the correctly rounded root."""
    n = 1 << 20
    lo, hi = 0x3FF0000000000000, 0x4010000000000000  # [1, 4)
    bits = torch.arange(0, n, dtype=torch.int64) * ((hi - lo) // n) + lo
    x = bits.view(torch.float64)
    got = torch.sqrt(x).view(torch.int64)
    exact = torch.tensor([math.sqrt(v) for v in x.tolist()], dtype=torch.float64).view(torch.int64)
    d = got - exact
    high, low, other = int((d == 1).sum()), int((d == -1).sum()), int(((d != 0) & (d.abs() != 1)).sum())
    if high == low == other == 0:
        name = "correctly-rounded"
    else:
        name = f"oneMKL vdSqrt, not correctly rounded ({high} 1 ulp high, {low} 1 ulp low, {other} further)"
    # The probe: 128 inputs where libtorch is not correctly rounded (spread over
    # the classified ones), 128 spread over [1, 4), 64 from the smallest
    # subnormal to 2^-900 (Z0HA's scaled branch) and the largest finite values.
    off = bits[d != 0].tolist()
    probe = off[:: max(1, len(off) // 128)][:128]
    probe += [lo + k * ((hi - lo) // 128) + 12345 for k in range(128)]
    probe += [1 + k * ((0x07B << 52) // 64) for k in range(64)]
    probe += [0x7FEFFFFFFFFFFFFF, 0x7FE0000000000000, 0x7FD123456789ABCD, 0x7C00000000000001]
    return {
        "name": name,
        "classified_over": f"{n} inputs of [1,4) (every 2^33rd float64)",
        "one_ulp_high": high,
        "one_ulp_low": low,
        "more_than_one_ulp": other,
        "probe_inputs": probe,
        "probe_outputs": tensor_to_bits(torch.sqrt(bits_to_tensor(probe, torch.float64))),
    }


def values(gen, shape, kind, dtype):
    n = 1
    for s in shape:
        n *= s
    if kind == "normal":
        return torch.randn(n, generator=gen, dtype=dtype).reshape(shape)
    # wide: zeros, subnormals, tiny, moderate and huge magnitudes (squares
    # underflow or overflow), both signs
    mantissa, itype, scale = {
        torch.float32: (0x7FFFFF, torch.int32, 1e30),
        torch.float64: ((1 << 52) - 1, torch.int64, 1e200),
        torch.bfloat16: (0x7F, torch.int16, 1e30),
        torch.float16: (0x3FF, torch.int16, 1e3),
    }[dtype]
    v = torch.randn(n, generator=gen, dtype=dtype)
    pick = torch.randint(0, 6, (n,), generator=gen)
    sub = torch.randint(1, mantissa, (n,), generator=gen, dtype=itype).view(dtype)
    v = torch.where(pick == 0, torch.zeros_like(v) * torch.sign(v), v)
    v = torch.where(pick == 1, sub * torch.sign(v), v)
    v = torch.where(pick == 2, v * (1 / scale), v)
    v = torch.where(pick == 3, v * scale, v)
    return v.reshape(shape)


def scenarios():
    d = dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False)
    return [
        dict(
            name="defaults_single_group",
            description="PyTorch's defaults; shapes (3,), (2,3), (2,2,2) as in the notes' tiny run.",
            shapes=[[3], [2, 3], [2, 2, 2]],
            groups=[dict(d, params=[0, 1, 2])],
            steps=6,
            kind="normal",
            absent={},
        ),
        dict(
            name="all_options_three_groups",
            description="Three groups covering lr, rho, eps, weight_decay and maximize, SIMD tail sizes, "
            "a parameter that never gets a gradient and one whose gradient is absent on some steps.",
            shapes=[[33], [17], [300], [7], [65], [5]],
            groups=[
                dict(d, lr=0.5, weight_decay=0.1, maximize=True, params=[0, 1]),
                dict(d, lr=0.05, rho=0.95, eps=1e-8, params=[2, 3]),
                dict(d, lr=0.37, rho=0.5, eps=1e-4, weight_decay=0.01, params=[4, 5]),
            ],
            steps=6,
            kind="normal",
            absent={5: "always", 3: [1, 4]},
        ),
        dict(
            name="boundary_hyperparameters",
            description="rho = 0, rho = 1, lr = 0 and eps = 0 (with nonzero gradients), one group each.",
            shapes=[[16], [16], [16], [16]],
            groups=[
                dict(d, rho=0.0, params=[0]),
                dict(d, rho=1.0, params=[1]),
                dict(d, lr=0.0, params=[2]),
                dict(d, eps=0.0, params=[3]),
            ],
            steps=5,
            kind="normal",
            absent={},
        ),
        dict(
            name="wide_values_nonfinite",
            description="Zeros, subnormals, tiny and huge values (squares overflow to inf, NaN follows).",
            shapes=[[64], [31]],
            groups=[dict(d, weight_decay=0.1, params=[0, 1])],
            steps=5,
            kind="wide",
            absent={},
        ),
        dict(
            name="save_load_mid_run",
            description="state_dict saved with torch.save after step 3, loaded with torch.load into a fresh "
            "optimizer over cloned parameters, then 3 more steps (asserted equal to the uninterrupted run).",
            shapes=[[9], [4, 4]],
            groups=[dict(d, lr=0.7, params=[0]), dict(d, rho=0.8, weight_decay=0.05, params=[1])],
            steps=6,
            kind="normal",
            absent={},
            roundtrip_after=3,
        ),
    ]


def build(params, groups, foreach):
    return torch.optim.Adadelta(
        [dict({k: g[k] for k in HYPER_KEYS}, params=[params[i] for i in g["params"]]) for g in groups],
        foreach=foreach,
    )


def state_dict_json(sd):
    state = {}
    for idx, st in sd["state"].items():
        state[str(idx)] = {
            "step": {"bits": scalar_bits(st["step"]), "value": readable(st["step"].item())},
            "square_avg": tensor_json(st["square_avg"]),
            "acc_delta": tensor_json(st["acc_delta"]),
        }
    groups = [{k: (v if k != "params" else list(v)) for k, v in g.items()} for g in sd["param_groups"]]
    return {"state": state, "param_groups": groups}


# Which torch.optim.adadelta function runs for each value of `foreach` on CPU
# (checked at every step through torch_adadelta's call counters).
IMPLEMENTATION = {None: "_single_tensor_adadelta", True: "_multi_tensor_adadelta"}
COUNTER = {None: "single", True: "multi"}


def run(sc, seed, dtype, foreach):
    gen = torch.Generator().manual_seed(seed)
    init = [values(gen, s, sc["kind"], dtype) for s in sc["shapes"]]
    grads = []
    for t in range(sc["steps"]):
        row = []
        for i, s in enumerate(sc["shapes"]):
            a = sc["absent"].get(i)
            g = values(gen, s, sc["kind"], dtype)
            row.append(None if a == "always" or (isinstance(a, list) and t in a) else g)
        grads.append(row)

    def trajectory(roundtrip_after=None):
        params = [p.clone().requires_grad_(True) for p in init]
        opt = build(params, sc["groups"], foreach)
        out = []
        for t in range(sc["steps"]):
            if roundtrip_after is not None and t == roundtrip_after:
                buf = io.BytesIO()
                torch.save(opt.state_dict(), buf)
                buf.seek(0)
                params = [p.detach().clone().requires_grad_(True) for p in params]
                opt = build(params, sc["groups"], foreach)
                opt.load_state_dict(torch.load(buf))
            for p, g in zip(params, grads[t]):
                p.grad = None if g is None else g.clone()
            before = dict(torch_adadelta._CALLS)
            opt.step()
            ran = [k for k in ("single", "multi") if torch_adadelta._CALLS[k] != before[k]]
            assert ran == [COUNTER[foreach]], f"foreach={foreach}: ran {ran}, expected {IMPLEMENTATION[foreach]}"
            out.append({"params": [tensor_json(p) for p in params], "state_dict": state_dict_json(opt.state_dict())})
        return out

    steps = trajectory(sc.get("roundtrip_after"))
    if sc.get("roundtrip_after") is not None:
        plain = trajectory(None)
        assert json.dumps(plain) == json.dumps(steps), "save/load round trip changed the trajectory"
    return {
        "name": sc["name"],
        "description": sc["description"],
        "dtype": str(dtype).removeprefix("torch."),
        "foreach": foreach,
        "implementation": IMPLEMENTATION[foreach],
        "seed": seed,
        "groups": sc["groups"],
        "params": [tensor_json(p) for p in init],
        "grads": [[None if g is None else tensor_json(g) for g in row] for row in grads],
        "roundtrip_after_step": sc.get("roundtrip_after"),
        "steps": steps,
    }


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    outdir = os.path.join(root, "fixtures", "adadelta")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    torch_adadelta._install_path_counters()
    print("[fixtures] classifying libtorch's sqrt ...", file=sys.stderr, flush=True)
    generated_by = {
        "program": "difftest/python/gen_fixtures.py",
        "command": "./scripts/regen-fixtures.sh",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_version": mkl_version(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "sqrt_flavour": sqrt_flavour(),
        "sqrt_flavour_float64": sqrt_flavour_float64(),
    }
    scs = scenarios()
    # The manifest key and file suffix of each dtype.
    kinds = {
        torch.float32: ("fixtures", ""),
        torch.float64: ("fixtures_float64", ".float64"),
        torch.bfloat16: ("fixtures_bfloat16", ".bfloat16"),
        torch.float16: ("fixtures_float16", ".float16"),
    }
    manifest = {"format": FORMAT, "generated_by": generated_by, **{key: [] for key, _ in kinds.values()}}
    runs = [(dtype, foreach) for dtype in kinds for foreach in (None, True)]
    for k, sc in enumerate(scs):
        for dtype, foreach in runs:
            print(f"[fixtures] {k + 1}/{len(scs)} {sc['name']} {dtype} foreach={foreach} ...", file=sys.stderr, flush=True)
            # The same seed for every run of a scenario: float64 draws other values anyway.
            fx = run(sc, 1000 + k, dtype, foreach)
            fx = {"format": FORMAT, "generated_by": generated_by, **fx}
            key, suffix = kinds[dtype]
            suffix += ".foreach" if foreach else ""
            path = os.path.join(outdir, sc["name"] + suffix + ".json")
            with open(path + ".tmp", "w") as f:
                f.write(dumps(fx))
            os.replace(path + ".tmp", path)
            manifest[key].append(os.path.relpath(path, os.path.join(root, "fixtures")))
    with open(os.path.join(root, "fixtures", "MANIFEST.json"), "w") as f:
        f.write(dumps(manifest))
    print(f"[fixtures] wrote {len(scs) * len(runs)} fixtures to {outdir} (sqrt: {generated_by['sqrt_flavour']['name']})", file=sys.stderr)


if __name__ == "__main__":
    main()
