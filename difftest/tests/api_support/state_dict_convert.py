#!/usr/bin/env python3
"""A test helper of difftest/tests/api_interop.rs, not for users: convert a
``torch.optim.Adadelta`` state dict between PyTorch and adadelta-rs's JSON.
Users read and write ``torch.save`` files directly with ``adadelta::checkpoint::torch``.

    python state_dict_convert.py to-rust  optimizer.pt   optimizer.json
    python state_dict_convert.py to-torch optimizer.json optimizer.pt

``to-rust`` reads a ``torch.save``d ``optimizer.state_dict()`` and writes the
JSON that ``adadelta::StateDict::load`` reads; ``to-torch`` does the reverse,
writing a file for ``optimizer.load_state_dict(torch.load(path))``. Nothing
is lost either way: every tensor element travels as its IEEE-754 bit pattern.

The JSON format (``fast/src/optimizer/state_dict.rs``) is PyTorch's layout::

    {"state": {"0": {"step": T, "square_avg": T, "acc_delta": T}, ...},
     "param_groups": [{"lr": 1.0, ..., "params": [0, 1]}, ...]}

where each tensor T is ``{"dtype": "float32", "shape": [...], "bits": [u32...]}``
(row-major) and non-finite hyperparameters are the strings "inf", "-inf",
"nan" (JSON has no infinity).

What is converted and how:

* ``step``: a 0-dim float32 tensor. A Python number or a float64 tensor
  (PyTorch with a float64 default dtype, or an old checkpoint) is accepted
  if float32 holds its value exactly.
* ``square_avg``, ``acc_delta``: float32 tensors only (adadelta-rs steps f32
  parameters), kept with their shape.
* ``lr`` given as a tensor becomes its float value: PyTorch's update reads a
  tensor lr through ``.item()`` and rounds ``-lr`` to float32 as it does for a
  float, so the steps are the same. (Converted back, it is a float.)
* Other group keys (``param_names``, an LR scheduler's ``initial_lr``, ...)
  are copied if they are plain JSON values; a tensor there is an error.

The functions ``torch_to_rust`` and ``rust_to_torch`` do the same on
in-memory dicts, for use from other scripts.
"""

import argparse
import json
import math
import sys

import torch

_U32 = 1 << 32
_I32_MAX = (1 << 31) - 1
_STATE_KEYS = ("step", "square_avg", "acc_delta")


class ConversionError(ValueError):
    """The input is not an Adadelta state dict this tool can convert."""


# ---- tensors ----


def tensor_to_json(t, what):
    """A float32 tensor -> {"dtype", "shape", "bits"} (row-major)."""
    if not isinstance(t, torch.Tensor):
        raise ConversionError(f"{what} is a {type(t).__name__}, not a tensor")
    if t.dtype != torch.float32:
        raise ConversionError(f"{what} has dtype {t.dtype}; only torch.float32 is supported")
    if t.is_complex() or t.is_sparse:
        raise ConversionError(f"{what} is complex or sparse")
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    bits = (flat.view(torch.int32).to(torch.int64) & 0xFFFFFFFF).tolist()
    return {"dtype": "float32", "shape": list(t.shape), "bits": bits}


def json_to_tensor(obj, what):
    """{"dtype", "shape", "bits"} -> a float32 CPU tensor of that shape."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "bits"}:
        raise ConversionError(f"{what} is not a {{dtype, shape, bits}} object")
    if obj["dtype"] != "float32":
        raise ConversionError(f"{what} has dtype {obj['dtype']!r}; only float32 is supported")
    bits = obj["bits"]
    if any((not isinstance(b, int)) or b < 0 or b >= _U32 for b in bits):
        raise ConversionError(f"{what}: bits must be integers in [0, 2^32)")
    shape = [int(d) for d in obj["shape"]]
    if math.prod(shape) != len(bits):
        raise ConversionError(f"{what}: shape {shape} does not hold {len(bits)} elements")
    signed = torch.tensor(bits, dtype=torch.int64)
    signed = torch.where(signed > _I32_MAX, signed - _U32, signed)
    return signed.to(torch.int32).view(torch.float32).reshape(shape).clone()


def step_to_json(step, what):
    """PyTorch's step (0-dim tensor or number) -> a 0-dim float32 tensor object."""
    if isinstance(step, torch.Tensor):
        if step.numel() != 1:
            raise ConversionError(f"{what} has {step.numel()} elements, not 1")
        value = step.detach().to("cpu").reshape(()).to(torch.float64).item()
    elif isinstance(step, (int, float)) and not isinstance(step, bool):
        value = float(step)
    else:
        raise ConversionError(f"{what} is a {type(step).__name__}")
    as32 = torch.tensor(value, dtype=torch.float32)
    if not (as32.to(torch.float64).item() == value or (math.isnan(value))):
        raise ConversionError(f"{what} = {value!r} is not exactly a float32")
    return tensor_to_json(as32, what)


# ---- hyperparameters and other group values ----


def float_to_json(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def json_to_float(v, what):
    if isinstance(v, bool):
        raise ConversionError(f"{what} is a bool, not a number")
    if isinstance(v, (int, float)):
        return v
    if v in ("inf", "Infinity"):
        return math.inf
    if v in ("-inf", "-Infinity"):
        return -math.inf
    if v in ("nan", "NaN"):
        return math.nan
    raise ConversionError(f"{what} is {v!r}, not a number")


def plain_to_json(v, what):
    """A plain Python value (no tensors) -> JSON-safe (non-finite floats as strings)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return float_to_json(v)
    if isinstance(v, (list, tuple)):
        return [plain_to_json(x, f"{what}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, dict):
        return {str(k): plain_to_json(x, f"{what}.{k}") for k, x in v.items()}
    raise ConversionError(f"{what} is a {type(v).__name__}, which JSON cannot hold")


_NUMERIC = ("lr", "rho", "eps", "weight_decay")


def torch_to_rust(sd):
    """PyTorch's ``optimizer.state_dict()`` -> adadelta-rs's JSON object."""
    if not isinstance(sd, dict) or set(sd) != {"state", "param_groups"}:
        keys = sorted(sd) if isinstance(sd, dict) else type(sd).__name__
        raise ConversionError(f"expected a dict with 'state' and 'param_groups', got {keys}")
    state = {}
    for index, s in sd["state"].items():
        if not isinstance(index, int):
            raise ConversionError(f"state key {index!r} is not a parameter index")
        extra = set(s) - set(_STATE_KEYS)
        if extra:
            raise ConversionError(f"state[{index}] has keys {sorted(extra)} that Adadelta does not have")
        if not s:
            state[str(index)] = {}
            continue
        missing = [k for k in _STATE_KEYS if k not in s]
        if missing:
            raise ConversionError(f"state[{index}] has no {missing[0]!r}")
        state[str(index)] = {
            "step": step_to_json(s["step"], f"state[{index}].step"),
            "square_avg": tensor_to_json(s["square_avg"], f"state[{index}].square_avg"),
            "acc_delta": tensor_to_json(s["acc_delta"], f"state[{index}].acc_delta"),
        }
    groups = []
    for i, g in enumerate(sd["param_groups"]):
        out = {}
        for k, v in g.items():
            what = f"param_groups[{i}].{k}"
            if k == "lr" and isinstance(v, torch.Tensor):
                if v.numel() != 1:
                    raise ConversionError(f"{what} is a tensor of {v.numel()} elements")
                v = v.detach().to("cpu").reshape(()).to(torch.float64).item()
            if k == "params":
                out[k] = [int(p) for p in v]
            elif k in _NUMERIC:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConversionError(f"{what} is {v!r}, not a number")
                out[k] = float_to_json(float(v)) if isinstance(v, float) else v
            else:
                out[k] = plain_to_json(v, what)
        groups.append(out)
    return {"state": state, "param_groups": groups}


def rust_to_torch(obj):
    """adadelta-rs's JSON object -> a dict for ``optimizer.load_state_dict``."""
    if not isinstance(obj, dict) or set(obj) != {"state", "param_groups"}:
        raise ConversionError("expected an object with 'state' and 'param_groups'")
    state = {}
    for key, s in obj["state"].items():
        index = int(key)
        if not s:
            continue
        state[index] = {
            "step": json_to_tensor(s["step"], f"state[{index}].step").reshape(()),
            "square_avg": json_to_tensor(s["square_avg"], f"state[{index}].square_avg"),
            "acc_delta": json_to_tensor(s["acc_delta"], f"state[{index}].acc_delta"),
        }
    groups = []
    for i, g in enumerate(obj["param_groups"]):
        out = {}
        for k, v in g.items():
            if k in _NUMERIC:
                out[k] = json_to_float(v, f"param_groups[{i}].{k}")
            elif k == "params":
                out[k] = [int(p) for p in v]
            else:
                out[k] = v
        groups.append(out)
    return {"state": state, "param_groups": groups}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("direction", choices=["to-rust", "to-torch"])
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args(argv)
    try:
        if args.direction == "to-rust":
            sd = torch.load(args.input, map_location="cpu", weights_only=True)
            obj = torch_to_rust(sd)
            with open(args.output, "w") as f:
                json.dump(obj, f, allow_nan=False, separators=(",", ":"))
                f.write("\n")
        else:
            with open(args.input) as f:
                obj = json.load(f)
            torch.save(rust_to_torch(obj), args.output)
    except ConversionError as e:
        print(f"state_dict_convert.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
