#!/usr/bin/env python3
"""Regenerate the golden fixtures in ``fixtures/`` from real ``torch.optim.Adadelta``.

Run it through ``./scripts/regen-fixtures.sh`` (which sets up the project venv
with torch==2.13.0); it writes ``fixtures/adadelta/<scenario>.json`` and
``fixtures/MANIFEST.json``, printing progress on stderr.

Each fixture holds a scenario (param groups with their hyperparameters,
initial parameters, the gradient of every parameter at every step, ``null``
when absent) and what PyTorch produced after every step: the parameters and
the full ``state_dict()`` (PyTorch's layout: ``state`` keyed by integer index
with ``step``, ``square_avg``, ``acc_delta``; ``param_groups`` with every
hyperparameter key and ``params`` index lists). Every f32 is stored as its bit
pattern (``bits``, u32) beside a readable decimal (``values``; non-finite
values as the strings "nan", "inf", "-inf"). Replay reads only the bits.

``generated_by`` records the program, the torch version, the CPU capability,
MKL's version and the **sqrt flavour**: how libtorch's f32 ``sqrt`` rounds on
the generating machine (classified over 2^20 inputs of [1, 4), plus a probe of
inputs and outputs that replay compares with the current machine's libtorch).
"""

import io
import json
import os
import platform
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


def values(gen, shape, kind):
    n = 1
    for s in shape:
        n *= s
    if kind == "normal":
        return torch.randn(n, generator=gen, dtype=torch.float32).reshape(shape)
    # wide: zeros, subnormals, tiny, moderate and huge magnitudes, both signs
    v = torch.randn(n, generator=gen, dtype=torch.float32)
    pick = torch.randint(0, 6, (n,), generator=gen)
    sub = torch.randint(1, 0x7FFFFF, (n,), generator=gen, dtype=torch.int32).view(torch.float32)
    v = torch.where(pick == 0, torch.zeros_like(v) * torch.sign(v), v)
    v = torch.where(pick == 1, sub * torch.sign(v), v)
    v = torch.where(pick == 2, v * 1e-30, v)
    v = torch.where(pick == 3, v * 1e30, v)
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


def build(params, groups):
    return torch.optim.Adadelta(
        [dict({k: g[k] for k in HYPER_KEYS}, params=[params[i] for i in g["params"]]) for g in groups]
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


def run(sc, seed):
    gen = torch.Generator().manual_seed(seed)
    init = [values(gen, s, sc["kind"]) for s in sc["shapes"]]
    grads = []
    for t in range(sc["steps"]):
        row = []
        for i, s in enumerate(sc["shapes"]):
            a = sc["absent"].get(i)
            g = values(gen, s, sc["kind"])
            row.append(None if a == "always" or (isinstance(a, list) and t in a) else g)
        grads.append(row)

    def trajectory(roundtrip_after=None):
        params = [p.clone().requires_grad_(True) for p in init]
        opt = build(params, sc["groups"])
        out = []
        for t in range(sc["steps"]):
            if roundtrip_after is not None and t == roundtrip_after:
                buf = io.BytesIO()
                torch.save(opt.state_dict(), buf)
                buf.seek(0)
                params = [p.detach().clone().requires_grad_(True) for p in params]
                opt = build(params, sc["groups"])
                opt.load_state_dict(torch.load(buf))
            for p, g in zip(params, grads[t]):
                p.grad = None if g is None else g.clone()
            opt.step()
            out.append({"params": [tensor_json(p) for p in params], "state_dict": state_dict_json(opt.state_dict())})
        return out

    steps = trajectory(sc.get("roundtrip_after"))
    if sc.get("roundtrip_after") is not None:
        plain = trajectory(None)
        assert json.dumps(plain) == json.dumps(steps), "save/load round trip changed the trajectory"
    return {
        "name": sc["name"],
        "description": sc["description"],
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
    }
    scs = scenarios()
    manifest = {"format": FORMAT, "generated_by": generated_by, "fixtures": []}
    for k, sc in enumerate(scs):
        print(f"[fixtures] {k + 1}/{len(scs)} {sc['name']} ...", file=sys.stderr, flush=True)
        fx = run(sc, seed=1000 + k)
        fx = {"format": FORMAT, "generated_by": generated_by, **fx}
        path = os.path.join(outdir, sc["name"] + ".json")
        with open(path + ".tmp", "w") as f:
            f.write(dumps(fx))
        os.replace(path + ".tmp", path)
        manifest["fixtures"].append(os.path.relpath(path, os.path.join(root, "fixtures")))
    with open(os.path.join(root, "fixtures", "MANIFEST.json"), "w") as f:
        f.write(dumps(manifest))
    print(f"[fixtures] wrote {len(scs)} fixtures to {outdir} (sqrt: {generated_by['sqrt_flavour']['name']})", file=sys.stderr)


if __name__ == "__main__":
    main()
