"""Dump torch.sqrt on float64 inputs for emu.c.

python dump.py OUTDIR        writes OUTDIR/<set>.in and OUTDIR/<set>.out (raw little-endian u64 bit patterns)
python dump.py OUTDIR pos    also checks that slices / offsets / 0-dim / strided / _foreach_sqrt_ / thread counts
                             give the same bits as the one big call (prints JSON)
"""
import os, sys, json, time, numpy as np, torch

out = sys.argv[1]; os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261203)
sets = {}
# 2^24 consecutive patterns from 1.0, and 2^24 consecutive straddling 2.0 (the odd/even exponent switch)
sets["one"] = np.arange(0x3FF0000000000000, 0x3FF0000000000000 + (1 << 24), dtype=np.uint64)
sets["two"] = np.arange(0x4000000000000000 - (1 << 23), 0x4000000000000000 + (1 << 23), dtype=np.uint64)
# 2^24 consecutive from 1.5 and the 2^24 patterns just below 4.0
sets["mid"] = np.arange(0x3FF8000000000000, 0x3FF8000000000000 + (1 << 24), dtype=np.uint64)
sets["four"] = np.arange(0x4010000000000000 - (1 << 24), 0x4010000000000000, dtype=np.uint64)
# 2^24 random patterns: exponent uniform over 0..0x7fe (all finite non-negative exponents, incl. subnormals), random mantissa
e = rng.integers(0, 0x7FF, 1 << 24, dtype=np.uint64)
m = rng.integers(0, 1 << 52, 1 << 24, dtype=np.uint64)
sets["rand"] = (e << np.uint64(52)) | m
# 2^24 random doubles uniform in [0,4)
sets["unif"] = (rng.random(1 << 24) * 4).view(np.uint64)
# specials: +-0, subnormals (smallest, largest, random), +-inf, NaNs with payloads and signs, negatives,
# the largest finite values, both sides of 2^1022 and 2^-1022
sp = [0, 1 << 63, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000000000,
      0x7FF0000000000001, 0x7FF4000000000000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 0x7FF8000000000123,
      0xFFF0000000000123, 0x7FF0DEADBEEF0001, 0xBFF0000000000000, 0x8000000000000001, 0x800FFFFFFFFFFFFF,
      0xFFEFFFFFFFFFFFFF, 0x8010000000000000]
sp += list(range(1, 1 << 16)) + list(range((1 << 52) - (1 << 16), (1 << 52) + (1 << 16)))
sp += list(range(0x7FEFFFFFFFFFFFFF - (1 << 20) + 1, 0x7FEFFFFFFFFFFFFF + 1))          # largest finite
sp += list(range(0x7FD0000000000000 - (1 << 16), 0x7FD0000000000000 + (1 << 16)))      # around 2^1022
sp = np.array(sp, dtype=np.uint64)
sub = rng.integers(1, 1 << 52, 1 << 20, dtype=np.uint64)                              # random subnormals
neg = rng.integers(0, 0x7FF0000000000000, 1 << 16, dtype=np.uint64) | np.uint64(1 << 63)  # random negatives
nan = rng.integers(1, 1 << 52, 1 << 16, dtype=np.uint64) | np.uint64(0x7FF0000000000000)
nan[::2] |= np.uint64(1 << 63)
sets["special"] = np.concatenate([sp, sub, neg, nan])

res = {"torch": torch.__version__, "threads": torch.get_num_threads(),
       "cap": torch.backends.cpu.get_cpu_capability(),
       "env": {k: os.environ.get(k) for k in ("MKL_ENABLE_INSTRUCTIONS", "LD_PRELOAD", "OMP_NUM_THREADS")}}
full = {}
for k, b in sets.items():
    t = torch.from_numpy(b.view(np.float64).copy())
    r = torch.sqrt(t).numpy().view(np.uint64)
    full[k] = (t, r)
    b.tofile(f"{out}/{k}.in"); r.tofile(f"{out}/{k}.out")
    ieee = np.sqrt(b.view(np.float64)).view(np.uint64)
    fin = np.isfinite(b.view(np.float64)) & (b.view(np.float64) >= 0)
    d = r.view(np.int64)[fin] - ieee.view(np.int64)[fin]
    res[k] = {"n": len(b), "finite_nonneg": int(fin.sum()), "diff_ieee": int((d != 0).sum()),
              "+1": int((d == 1).sum()), "-1": int((d == -1).sum()), "other": int(((d != 0) & (abs(d) != 1)).sum()),
              "nonfinite_or_neg_bits_differ_from_numpy": int((r[~fin] != ieee[~fin]).sum())}

if len(sys.argv) > 2:
    t, r = full["unif"]; n = len(r); bad = checks = 0
    idx = np.nonzero(r != np.sqrt(t.numpy()).view(np.uint64))[0]
    for L in (1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 2047, 2048, 2049, 5000, 100003):
        for _ in range(10):
            s = int(rng.integers(0, n - L))
            bad += int((torch.sqrt(t[s:s + L].clone()).numpy().view(np.uint64) != r[s:s + L]).sum()); checks += L
        for off in range(min(L, 17)):
            s = int(idx[rng.integers(len(idx))]) - off
            if s < 0 or s + L > n: continue
            bad += int((torch.sqrt(t[s:s + L].clone()).numpy().view(np.uint64) != r[s:s + L]).sum()); checks += L
    z = [torch.sqrt(t[i]).view(torch.int64).item() for i in idx[:3000]]
    bad0 = sum(int(np.uint64(a & 0xFFFFFFFFFFFFFFFF) != b) for a, b in zip(z, r[idx[:3000]]))
    un = int((torch.sqrt(t[1:]).numpy().view(np.uint64) != r[1:]).sum())
    ts = torch.from_numpy(np.repeat(t.numpy()[:1 << 20], 2))
    st = int((torch.sqrt(ts[::2]).numpy().view(np.uint64) != r[:1 << 20]).sum())
    c = t.clone(); torch._foreach_sqrt_([c]); fe = int((c.numpy().view(np.uint64) != r).sum())
    thr = {}
    for nt in (1, 2):
        torch.set_num_threads(nt); thr[nt] = int((torch.sqrt(t).numpy().view(np.uint64) != r).sum())
    ts, rs = full["special"]
    sp_slices = sum(int((torch.sqrt(ts[s:s + L].clone()).numpy().view(np.uint64) != rs[s:s + L]).sum())
                    for L in (1, 3, 17) for s in range(0, 64))
    res["position"] = {"slice_checks": checks, "slice_diff": bad, "zero_dim_checked": len(z), "zero_dim_diff": bad0,
                       "offset1_diff": un, "strided_diff": st, "foreach_sqrt_diff": fe, "threads_diff": thr,
                       "special_small_slices_diff": sp_slices}
print(json.dumps(res))
