"""Real PyTorch's side of difftest/tests/torch_format.rs.

  torch_format.py write <kind> <dir>
      Writes, with torch.save, for the scenario <kind>:
        <dir>/inputs.pt    {"config": {...}, "init": {name: tensor}, "grads": {"<t>.<name>": tensor}}
        <dir>/saved.pt     what the kind saves after 3 steps (an optimizer state dict, or a
                           training checkpoint {"model", "optimizer", "epoch", "scheduler"})
        <dir>/params3.pt   the parameters after 3 steps (name -> tensor)
        <dir>/expected.pt  {"params": ..., "state": opt.state_dict()} after 6 steps
  torch_format.py check <kind> <dir> [bits|layout]
      Loads <dir>/rust3.pt (and <dir>/rust_params3.pt unless the kind is a training
      checkpoint) with torch.load(weights_only=True); compares its state, as loaded, with
      PyTorch's own state_dict() after the same 3 steps; load_state_dicts it, continues 3
      steps in PyTorch, and compares with <dir>/rust6.pt. Every tensor is compared by dtype,
      shape and (unless "layout" is given) bits. Prints JSON {"compared": n,
      "mismatches": m, "first": "..."}.
  torch_format.py refused <legacy|float64|float16|step_int64|global> <dir>
      Writes <dir>/refused.pt, a file adadelta refuses with a message.

Parameters: 5 tensors of shapes (3,), (2, 3), (), (0,), (40,), in two groups. Gradients are
absent for some parameters at some steps, so state exists for only some of them. Kinds
starting with "float64" run it in float64 (parameters, gradients, square_avg and acc_delta;
step stays float32 as PyTorch keeps it), "float64_default_dtype" under
torch.set_default_dtype(torch.float64) (where PyTorch keeps step as float64 too); kinds
starting with "bfloat16" or "float16" run it in that dtype (step float32), with tensors of
37 and 100 elements in place of (3,) and (2, 3) (ATen computes the last len % 32 elements of
a 16-bit tensor in scalar code, which rounds differently) and eps 1e-4 in the second group
(float16 rounds 1e-8 to 0); kinds containing "foreach" run PyTorch's foreach path
(foreach=True in every group); kinds ending with "checkpoint" save a training checkpoint.
"""
import copy
import json
import sys

import torch

NAMES = ["a", "b", "c", "d", "e"]
STEPS = 6
SAVE_AT = 3
DTYPES = {"float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_of(kind):
    return next((d for name, d in DTYPES.items() if kind.startswith(name)), torch.float32)


def is_half(kind):
    return dtype_of(kind) in (torch.bfloat16, torch.float16)


def shapes(kind):
    if is_half(kind):
        return {"a": (37,), "b": (4, 25), "c": (), "d": (0,), "e": (40,)}
    return {"a": (3,), "b": (2, 3), "c": (), "d": (0,), "e": (40,)}


def config(kind):
    foreach = True if "foreach" in kind else None
    groups = [
        {"names": ["a", "b", "c"], "lr": 0.37, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.1,
         "maximize": True, "foreach": foreach},
        {"names": ["d", "e"], "lr": 1.0, "rho": 0.95, "eps": 1e-4 if is_half(kind) else 1e-8,
         "weight_decay": 0.0, "maximize": False, "foreach": foreach},
    ]
    return {"kind": kind, "groups": groups}


def is_checkpoint(kind):
    return kind.endswith("checkpoint")


def inputs(kind):
    g = torch.Generator().manual_seed(20261201)
    dtype = dtype_of(kind)
    shape = shapes(kind)
    init = {n: torch.randn(shape[n], generator=g, dtype=dtype) for n in NAMES}
    grads = {}
    for t in range(1, STEPS + 1):
        for i, n in enumerate(NAMES):
            # "b" has no gradient at step 2; "e" none before step 5 (no state when saved).
            if (n == "b" and t == 2) or (n == "e" and t < 5):
                continue
            grads[f"{t}.{n}"] = torch.randn(shape[n], generator=g, dtype=dtype) * 3
    return init, grads


def optimizer(kind, params):
    cfg = config(kind)
    lr_of = lambda grp: torch.tensor(grp["lr"]) if kind == "lr_tensor" else grp["lr"]
    groups = []
    for grp in cfg["groups"]:
        d = {"params": [params[n] for n in grp["names"]], "lr": lr_of(grp)}
        for k in ("rho", "eps", "weight_decay", "maximize", "foreach"):
            d[k] = grp[k]
        if kind == "extra_keys":
            d["param_names"] = list(grp["names"])
            d["custom_tag"] = {"run": "x", "ids": [1, 2, 3], "ratio": 0.25, "none": None}
        groups.append(d)
    opt = torch.optim.Adadelta(groups)
    if kind == "extra_keys":
        for grp in opt.param_groups:
            grp["initial_lr"] = grp["lr"]
    return opt


def step(opt, params, grads, t):
    opt.zero_grad(set_to_none=True)
    for n in NAMES:
        g = grads.get(f"{t}.{n}")
        if g is not None:
            params[n].grad = g.clone()
    opt.step()


def fresh_params(values):
    return {n: torch.nn.Parameter(values[n].clone()) for n in NAMES}


def write(kind, d):
    init, grads = inputs(kind)
    torch.save({"config": config(kind), "init": init, "grads": grads}, f"{d}/inputs.pt")
    params = fresh_params(init)
    opt = optimizer(kind, params)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5) \
        if is_checkpoint(kind) else None
    for t in range(1, SAVE_AT + 1):
        step(opt, params, grads, t)
        if sched is not None:
            sched.step()
    sd = opt.state_dict()
    if kind == "step_number":
        sd = copy.deepcopy(sd)  # the state dict shares its per-parameter dicts with opt
        # As PyTorch < 1.12 saved it: a plain number (a float for one, an int for another).
        for i, (k, s) in enumerate(sd["state"].items()):
            s["step"] = int(s["step"].item()) if i % 2 else float(s["step"].item())
    model = {n: params[n].detach() for n in NAMES}
    if is_checkpoint(kind):
        torch.save({"model": model, "optimizer": sd, "epoch": 3,
                    "scheduler": sched.state_dict()}, f"{d}/saved.pt")
    else:
        torch.save(sd, f"{d}/saved.pt")
    torch.save({n: params[n].detach().clone() for n in NAMES}, f"{d}/params3.pt")
    for t in range(SAVE_AT + 1, STEPS + 1):
        step(opt, params, grads, t)
    torch.save({"params": {n: params[n].detach() for n in NAMES}, "state": opt.state_dict()},
               f"{d}/expected.pt")


class NotAllowed:
    """A class of this script: pickled as GLOBAL __main__.NotAllowed."""


def refused(kind, d):
    """Files adadelta must refuse with a message: the legacy format, float64 state (for
    a float32 optimizer), float16 state (for a bfloat16 one), a step of int64, a global
    outside the allow-list."""
    dtype = torch.float16 if kind == "float16" else torch.float64
    params = [torch.nn.Parameter(torch.ones(3, dtype=dtype))]
    opt = torch.optim.Adadelta(params)
    params[0].grad = torch.ones(3, dtype=dtype)
    opt.step()
    if kind == "legacy":
        torch.save(opt.state_dict(), f"{d}/refused.pt", _use_new_zipfile_serialization=False)
    elif kind in ("float64", "float16"):
        torch.save(opt.state_dict(), f"{d}/refused.pt")
    elif kind == "step_int64":
        sd = copy.deepcopy(opt.state_dict())
        sd["state"][0]["step"] = torch.tensor(1, dtype=torch.int64)
        torch.save(sd, f"{d}/refused.pt")
    elif kind == "global":
        torch.save({"state": {}, "param_groups": [], "x": NotAllowed()}, f"{d}/refused.pt")
    else:
        raise ValueError(kind)


def bits(t):
    """Every element's bit pattern (float32 as int32, float64 as int64, bfloat16 and
    float16 as int16)."""
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64,
              torch.bfloat16: torch.int16, torch.float16: torch.int16}[t.dtype]
    return t.detach().contiguous().view(-1).view(as_int).tolist() if t.numel() else []


def check(kind, d, compare="bits"):
    init, grads = inputs(kind)
    saved = torch.load(f"{d}/rust3.pt", weights_only=True)
    if is_checkpoint(kind):
        assert saved["epoch"] == 3, saved["epoch"]
        values, sd = saved["model"], saved["optimizer"]
    else:
        values, sd = torch.load(f"{d}/rust_params3.pt", weights_only=True), saved
    compared, mismatches, first = 0, 0, None

    def cmp(what, got, exp):
        nonlocal compared, mismatches, first
        a, b = bits(got), bits(exp)
        compared += max(len(a), 1)
        if got.dtype != exp.dtype or tuple(got.shape) != tuple(exp.shape) or \
                (compare == "bits" and a != b):
            mismatches += 1
            first = first or f"{what}: {got.dtype} {got.tolist()} != {exp.dtype} {exp.tolist()}"

    # The state as loaded, before load_state_dict casts anything: what PyTorch's own
    # state_dict() holds after the same 3 steps (dtypes, shapes, bits).
    own_params = fresh_params(init)
    own = optimizer(kind, own_params)
    for t in range(1, SAVE_AT + 1):
        step(own, own_params, grads, t)
    own_sd = own.state_dict()
    if sorted(sd["state"]) != sorted(own_sd["state"]):
        mismatches += 1
        first = first or f"saved state keys {sorted(sd['state'])} != {sorted(own_sd['state'])}"
    for i in own_sd["state"]:
        for k in ("step", "square_avg", "acc_delta"):
            cmp(f"saved state[{i}].{k}", sd["state"][i][k], own_sd["state"][i][k])
    for n in NAMES:
        cmp(f"saved params.{n}", values[n], own_params[n].detach())

    params = fresh_params(values)
    opt = optimizer(kind, params)
    opt.load_state_dict(sd)
    for t in range(SAVE_AT + 1, STEPS + 1):
        step(opt, params, grads, t)
    want = torch.load(f"{d}/rust6.pt", weights_only=True)

    for n in NAMES:
        cmp(f"params.{n}", params[n], want["params"][n])
    mine, theirs = opt.state_dict(), want["state"]
    if sorted(mine["state"]) != sorted(theirs["state"]):
        mismatches += 1
        first = first or f"state keys {sorted(mine['state'])} != {sorted(theirs['state'])}"
    for i in mine["state"]:
        for k in ("step", "square_avg", "acc_delta"):
            cmp(f"state[{i}].{k}", mine["state"][i][k], theirs["state"][i][k])
    for gm, gt in zip(mine["param_groups"], theirs["param_groups"]):
        for k in ("rho", "eps", "weight_decay", "maximize", "foreach", "params"):
            compared += 1
            if gm[k] != gt[k]:
                mismatches += 1
                first = first or f"group {k}: {gm[k]} != {gt[k]}"
    print(json.dumps({"compared": compared, "mismatches": mismatches, "first": first}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    cmd, kind, d = sys.argv[1:4]
    if kind == "float64_default_dtype":
        torch.set_default_dtype(torch.float64)
    {"write": write, "check": check, "refused": refused}[cmd](kind, d, *sys.argv[4:])
