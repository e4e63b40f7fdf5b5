"""Real PyTorch's side of difftest/tests/torch_format.rs.

  torch_format.py write <kind> <dir>
      Writes, with torch.save, for the scenario <kind>:
        <dir>/inputs.pt    {"config": {...}, "init": {name: tensor}, "grads": {"<t>.<name>": tensor}}
        <dir>/saved.pt     what the kind saves after 3 steps (an optimizer state dict, or a
                           training checkpoint {"model", "optimizer", "epoch", "scheduler"})
        <dir>/params3.pt   the parameters after 3 steps (name -> tensor)
        <dir>/expected.pt  {"params": ..., "state": opt.state_dict()} after 6 steps
  torch_format.py check <kind> <dir>
      Loads <dir>/rust3.pt (and <dir>/rust_params3.pt unless the kind is a training
      checkpoint) with torch.load(weights_only=True), continues 3 steps in PyTorch, and
      compares with <dir>/rust6.pt bit for bit. Prints JSON {"compared": n, "mismatches": m,
      "first": "..."}.
  torch_format.py refused <legacy|float64|global> <dir>
      Writes <dir>/refused.pt, a file adadelta refuses with a message.

Parameters: 5 tensors of shapes (3,), (2, 3), (), (0,), (40,), in two groups. Gradients are
absent for some parameters at some steps, so state exists for only some of them.
"""
import copy
import json
import sys

import torch

SHAPES = {"a": (3,), "b": (2, 3), "c": (), "d": (0,), "e": (40,)}
NAMES = list(SHAPES)
STEPS = 6
SAVE_AT = 3


def config(kind):
    groups = [
        {"names": ["a", "b", "c"], "lr": 0.37, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.1,
         "maximize": True},
        {"names": ["d", "e"], "lr": 1.0, "rho": 0.95, "eps": 1e-8, "weight_decay": 0.0,
         "maximize": False},
    ]
    return {"kind": kind, "groups": groups}


def inputs():
    g = torch.Generator().manual_seed(20261201)
    init = {n: torch.randn(SHAPES[n], generator=g) for n in NAMES}
    grads = {}
    for t in range(1, STEPS + 1):
        for i, n in enumerate(NAMES):
            # "b" has no gradient at step 2; "e" none before step 5 (no state when saved).
            if (n == "b" and t == 2) or (n == "e" and t < 5):
                continue
            grads[f"{t}.{n}"] = torch.randn(SHAPES[n], generator=g) * 3
    return init, grads


def optimizer(kind, params):
    cfg = config(kind)
    lr_of = lambda grp: torch.tensor(grp["lr"]) if kind == "lr_tensor" else grp["lr"]
    groups = []
    for grp in cfg["groups"]:
        d = {"params": [params[n] for n in grp["names"]], "lr": lr_of(grp)}
        for k in ("rho", "eps", "weight_decay", "maximize"):
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
    init, grads = inputs()
    torch.save({"config": config(kind), "init": init, "grads": grads}, f"{d}/inputs.pt")
    params = fresh_params(init)
    opt = optimizer(kind, params)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5) \
        if kind == "checkpoint" else None
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
    if kind == "checkpoint":
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
    """Files adadelta must refuse with a message: the legacy format, float64 state,
    a global outside the allow-list."""
    params = [torch.nn.Parameter(torch.ones(3, dtype=torch.float64))]
    opt = torch.optim.Adadelta(params)
    params[0].grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    if kind == "legacy":
        torch.save(opt.state_dict(), f"{d}/refused.pt", _use_new_zipfile_serialization=False)
    elif kind == "float64":
        torch.save(opt.state_dict(), f"{d}/refused.pt")
    elif kind == "global":
        torch.save({"state": {}, "param_groups": [], "x": NotAllowed()}, f"{d}/refused.pt")
    else:
        raise ValueError(kind)


def bits(t):
    return t.detach().contiguous().view(-1).view(torch.int32).tolist() if t.numel() else []


def check(kind, d):
    _, grads = inputs()
    saved = torch.load(f"{d}/rust3.pt", weights_only=True)
    if kind == "checkpoint":
        assert saved["epoch"] == 3, saved["epoch"]
        values, sd = saved["model"], saved["optimizer"]
    else:
        values, sd = torch.load(f"{d}/rust_params3.pt", weights_only=True), saved
    params = fresh_params(values)
    opt = optimizer(kind, params)
    opt.load_state_dict(sd)
    for t in range(SAVE_AT + 1, STEPS + 1):
        step(opt, params, grads, t)
    want = torch.load(f"{d}/rust6.pt", weights_only=True)
    compared, mismatches, first = 0, 0, None

    def cmp(what, got, exp):
        nonlocal compared, mismatches, first
        a, b = bits(got), bits(exp)
        compared += max(len(a), 1)
        if tuple(got.shape) != tuple(exp.shape) or a != b:
            mismatches += 1
            first = first or f"{what}: {got.tolist()} != {exp.tolist()}"

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
        for k in ("rho", "eps", "weight_decay", "maximize", "params"):
            compared += 1
            if gm[k] != gt[k]:
                mismatches += 1
                first = first or f"group {k}: {gm[k]} != {gt[k]}"
    print(json.dumps({"compared": compared, "mismatches": mismatches, "first": first}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    cmd, kind, d = sys.argv[1:4]
    {"write": write, "check": check, "refused": refused}[cmd](kind, d)
