#!/usr/bin/env python3
"""Regenerate the torch.save seed files in ``fixtures/torch/`` with real PyTorch.

Run it through ``./scripts/regen-torch-fixtures.sh`` (the project venv, torch==2.13.0).
The files are the seeds of ``fast/tests/reliability_fuzz_files.rs`` (the fuzzer of the
torch-format loaders), which mutates them and also loads each one unmutated. They are
small (a few KB each) and cover what ``torch.save`` writes for an optimizer:

* ``optimizer_state.pt``: ``torch.save(opt.state_dict())`` of ``torch.optim.Adadelta``
  after 3 steps, two groups with non-default options; parameters of shapes (3,), (2, 3),
  () (0-dim), (0,) (empty) and (5,). "b" has no gradient at step 2 and "e" none at all,
  so the state is partial: "e" (index 4) has none.
* ``training_checkpoint.pt``: ``{"model": ..., "optimizer": ..., "epoch": 3,
  "scheduler": StepLR's state_dict(), "views": ...}``: the model's parameters as
  ``nn.Parameter`` s (``_rebuild_parameter``), the scheduler's ``initial_lr`` in every
  group, and two views (a transpose and a strided slice) sharing one storage.
* ``lr_tensor.pt``: the same optimizer with ``lr=torch.tensor(...)``: every group's lr
  is a 0-dim float32 tensor.
* ``step_number.pt``: the state dict with every ``step`` a plain number (a float for
  one parameter, an int for the next), as PyTorch < 1.12 saved it.
* ``module_state.pt``: ``nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).state_dict()``:
  an OrderedDict with ``_metadata`` (BUILD), float32 tensors and the int64 buffer
  ``num_batches_tracked``.
* ``legacy.pt``: ``torch.save(..., _use_new_zipfile_serialization=False)``, the pre-1.6
  format the crate recognises and refuses.

``fixtures/torch/MANIFEST.json`` records the torch version and each file's size.
The zip files come out byte for byte the same on every run; ``legacy.pt`` differs in
its storage key, which the legacy format takes from the storage's address.
"""

import json
import os
import platform
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fixtures", "torch")

SHAPES = {"a": (3,), "b": (2, 3), "c": (), "d": (0,), "e": (5,)}
NAMES = list(SHAPES)
GROUPS = [
    {"names": ["a", "b", "c"], "lr": 0.37, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.1,
     "maximize": True},
    {"names": ["d", "e"], "lr": 1.0, "rho": 0.95, "eps": 1e-8, "weight_decay": 0.0,
     "maximize": False},
]
STEPS = 3


def trained(lr_tensor=False):
    g = torch.Generator().manual_seed(20261202)
    params = {n: torch.nn.Parameter(torch.randn(SHAPES[n], generator=g)) for n in NAMES}
    groups = []
    for grp in GROUPS:
        d = {"params": [params[n] for n in grp["names"]],
             "lr": torch.tensor(grp["lr"]) if lr_tensor else grp["lr"]}
        for k in ("rho", "eps", "weight_decay", "maximize"):
            d[k] = grp[k]
        groups.append(d)
    opt = torch.optim.Adadelta(groups)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5)
    for t in range(1, STEPS + 1):
        opt.zero_grad(set_to_none=True)
        for n in NAMES:
            if n == "e" or (n == "b" and t == 2):
                continue
            params[n].grad = torch.randn(SHAPES[n], generator=g) * 3
        opt.step()
        sched.step()
    return params, opt, sched


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    files = {}

    def save(obj, name, **kw):
        path = os.path.join(OUT, name)
        torch.save(obj, path, **kw)
        files[name] = os.path.getsize(path)
        print(f"wrote fixtures/torch/{name} ({files[name]} bytes)", file=sys.stderr)

    params, opt, sched = trained()
    save(opt.state_dict(), "optimizer_state.pt")

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    save({"model": {n: params[n] for n in NAMES},
          "optimizer": opt.state_dict(),
          "epoch": 3,
          "scheduler": sched.state_dict(),
          "views": {"t": base.t(), "slice": base[1:, ::2]}},
         "training_checkpoint.pt")

    _, opt_t, _ = trained(lr_tensor=True)
    save(opt_t.state_dict(), "lr_tensor.pt")

    sd = opt.state_dict()
    state = {}
    for i, (k, s) in enumerate(sd["state"].items()):
        s = dict(s)
        s["step"] = int(s["step"].item()) if i % 2 else float(s["step"].item())
        state[k] = s
    save({"state": state, "param_groups": sd["param_groups"]}, "step_number.pt")

    torch.manual_seed(7)
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    module.train()
    module(torch.randn(4, 3))  # updates the running stats and num_batches_tracked
    save(module.state_dict(), "module_state.pt")

    save({"w": torch.tensor([1.0, 2.0])}, "legacy.pt", _use_new_zipfile_serialization=False)

    manifest = {
        "generated_by": {
            "program": "difftest/python/gen_torch_fixtures.py",
            "command": "./scripts/regen-torch-fixtures.sh",
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
        },
        "files": files,
    }
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
