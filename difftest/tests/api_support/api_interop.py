#!/usr/bin/env python3
"""Real ``torch.optim.Adadelta`` for the API interop tests
(``difftest/tests/api_interop.rs``, ``difftest/tests/api_pytorch.rs``).

One JSON request on stdin, one JSON answer on stdout. Tensors travel as
``{"shape": [...], "bits": [u32...]}`` (f32 bit patterns, row-major); state
dicts in adadelta-rs's JSON format (converted with ``state_dict_convert.py``,
which must sit next to this script or be importable).

Requests (``"command"``):

``run``
    ``{"groups": [{"options": {...}, "size": n}, ...], "params": [T, ...],
    "load": path | null, "grads": [[T | null, ...], ...],
    "save_after": t | null, "save_path": path | null}``: builds
    ``Adadelta([{"params": [...], **options}, ...])`` (parameters given to the
    groups in order), loads ``torch.load(load)`` if given, then runs one step
    per entry of ``grads`` (``null``: that parameter has no gradient), and
    ``torch.save``s the state dict after step ``save_after`` (0 = before any
    step). Answers ``{"snapshots": [S0, S1, ...]}``, S0 before the first step,
    each ``{"params": [T...], "state_dict": <adadelta-rs JSON>}``.

``step_from``
    ``{"items": [{"groups": ..., "params": [T...], "state_dict": <JSON>,
    "grads": [T | null...]}, ...]}``: for each item, an optimizer at that
    state takes one step; answers ``{"snapshots": [S, ...]}``.

``errors``
    ``{"probes": [{"kind": ..., ...}, ...]}``: triggers each error in
    PyTorch and answers ``{"errors": [{"type": ..., "message": ...}, ...]}``
    (``type`` ``null`` if nothing was raised). Kinds: ``lr``, ``rho``,
    ``eps``, ``weight_decay`` (with ``value``; non-finite as "nan", "inf",
    "-inf"), ``empty``, ``overlap``, ``duplicate`` (the warning),
    ``load_group_count``, ``load_group_size``, ``capturable``,
    ``grad_size`` (``param_shape``, ``grad_len``), ``reshape`` (``len``,
    ``shape``).
"""

import json
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import state_dict_convert as conv  # noqa: E402

_U32 = 1 << 32
_I32_MAX = (1 << 31) - 1


def to_tensor(t):
    bits = torch.tensor(t["bits"], dtype=torch.int64)
    bits = torch.where(bits > _I32_MAX, bits - _U32, bits)
    return bits.to(torch.int32).view(torch.float32).reshape(t["shape"]).clone()


def from_tensor(t):
    flat = t.detach().contiguous().reshape(-1)
    return {
        "shape": list(t.shape),
        "bits": (flat.view(torch.int32).to(torch.int64) & 0xFFFFFFFF).tolist(),
    }


def build(groups, params):
    tensors = [to_tensor(p).requires_grad_(True) for p in params]
    spec, k = [], 0
    for g in groups:
        spec.append({"params": tensors[k : k + g["size"]], **g["options"]})
        k += g["size"]
    if k != len(tensors):
        raise ValueError(f"groups hold {k} params, {len(tensors)} given")
    return tensors, torch.optim.Adadelta(spec)


def snapshot(tensors, opt):
    return {
        "params": [from_tensor(p) for p in tensors],
        "state_dict": conv.torch_to_rust(opt.state_dict()),
    }


def set_grads(tensors, grads):
    for p, g in zip(tensors, grads, strict=True):
        p.grad = None if g is None else to_tensor(g)


def run(req):
    tensors, opt = build(req["groups"], req["params"])
    if req.get("load"):
        opt.load_state_dict(torch.load(req["load"], weights_only=True))
    save_after, save_path = req.get("save_after"), req.get("save_path")
    snaps = [snapshot(tensors, opt)]
    if save_after == 0:
        torch.save(opt.state_dict(), save_path)
    for t, grads in enumerate(req["grads"], start=1):
        set_grads(tensors, grads)
        opt.step()
        snaps.append(snapshot(tensors, opt))
        if save_after == t:
            torch.save(opt.state_dict(), save_path)
    return {"snapshots": snaps}


def step_from(req):
    snaps = []
    for item in req["items"]:
        tensors, opt = build(item["groups"], item["params"])
        opt.load_state_dict(conv.rust_to_torch(item["state_dict"]))
        set_grads(tensors, item["grads"])
        opt.step()
        snaps.append(snapshot(tensors, opt))
    return {"snapshots": snaps}


def probe(p):
    kind = p["kind"]
    x = torch.zeros(3, requires_grad=True)
    y = torch.zeros(2, requires_grad=True)
    if kind in ("lr", "rho", "eps", "weight_decay"):
        torch.optim.Adadelta([x], **{kind: conv.json_to_float(p["value"], kind)})
    elif kind == "empty":
        torch.optim.Adadelta([])
    elif kind == "overlap":
        torch.optim.Adadelta([x]).add_param_group({"params": [x]})
    elif kind == "duplicate":
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            torch.optim.Adadelta([x, x])
        if w:
            return {"type": "UserWarning", "message": str(w[0].message)}
    elif kind == "load_group_count":
        sd = torch.optim.Adadelta([x]).state_dict()
        torch.optim.Adadelta([{"params": [x]}, {"params": [y]}]).load_state_dict(sd)
    elif kind == "load_group_size":
        sd = torch.optim.Adadelta([x]).state_dict()
        torch.optim.Adadelta([x, y]).load_state_dict(sd)
    elif kind == "capturable":
        opt = torch.optim.Adadelta([x], capturable=True)
        x.grad = torch.ones(3)
        opt.step()
    elif kind == "grad_size":
        z = torch.zeros(p["param_shape"], requires_grad=True)
        z.grad = torch.zeros(p["grad_len"])
    elif kind == "reshape":
        torch.zeros(p["len"]).reshape(p["shape"])
    else:
        raise ValueError(f"unknown probe {kind!r}")
    return {"type": None, "message": None}


def errors(req):
    out = []
    for p in req["probes"]:
        try:
            out.append(probe(p))
        except Exception as e:  # noqa: BLE001 - the message is what is tested
            out.append({"type": type(e).__name__, "message": str(e)})
    return {"errors": out}


def main():
    torch.sqrt(torch.ones(1))  # MKL VML dispatch warm-up (pytorch#188792)
    req = json.load(sys.stdin)
    handler = {"run": run, "step_from": step_from, "errors": errors}[req["command"]]
    json.dump(handler(req), sys.stdout, allow_nan=False, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
