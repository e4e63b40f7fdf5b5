"""PyTorch's side of `cargo bench -p adadelta-difftest --bench checkpoint`.

  bench_checkpoint.py serve <sizes.json>
      Builds parameters of the given sizes, runs 3 Adadelta steps, then answers one JSON
      command per stdin line with one JSON line:
        {"op": "save", "path": P, "durable": true}  torch.save(opt.state_dict(), P)
                                                     [then os.fsync of the file]
        {"op": "load", "path": P}                    torch.load(P, weights_only=True) and
                                                     load_state_dict into a fresh Adadelta
      each answered with {"ns": <elapsed nanoseconds of that call alone>}.
  bench_checkpoint.py rss <save|load> <sizes.json> <path> [durable]
      In a fresh process: the same set-up, then one save or load, and prints
      {"before": B, "peak": H, "after": A} in bytes: the resident set before, its peak during
      the call (VmHWM after resetting it through /proc/self/clear_refs), and after.
"""
import json
import os
import sys
import time

import torch


def rss(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def setup(sizes_path):
    with open(sizes_path) as f:
        sizes = json.load(f)
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.rand(n) * 2 - 1) for n in sizes]
    opt = torch.optim.Adadelta(params)
    for _ in range(3):
        for p in params:
            p.grad = torch.rand_like(p) * 2 - 1
        opt.step()
    for p in params:
        p.grad = None
    return params, opt


def save(opt, path, durable):
    torch.save(opt.state_dict(), path)
    if durable:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load(params, path):
    fresh = torch.optim.Adadelta(params)
    t0 = time.perf_counter_ns()
    fresh.load_state_dict(torch.load(path, weights_only=True))
    return fresh, time.perf_counter_ns() - t0


def serve(sizes_path):
    params, opt = setup(sizes_path)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "save":
            t0 = time.perf_counter_ns()
            save(opt, cmd["path"], cmd["durable"])
            ns = time.perf_counter_ns() - t0
        elif cmd["op"] == "load":
            fresh, ns = load(params, cmd["path"])
            del fresh
        else:
            raise ValueError(cmd)
        print(json.dumps({"ns": ns}), flush=True)


def measure_rss(what, sizes_path, path, durable):
    params, opt = setup(sizes_path)
    before = rss("VmRSS")
    reset_peak()
    if what == "save":
        save(opt, path, durable)
        keep = None
    else:
        keep, _ = load(params, path)
    peak = rss("VmHWM")
    after = rss("VmRSS")
    print(json.dumps({"before": before, "peak": peak, "after": after}))
    del keep


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        measure_rss(sys.argv[2], sys.argv[3], sys.argv[4], len(sys.argv) > 5 and sys.argv[5] == "durable")
