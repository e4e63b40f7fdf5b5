"""How torch (CPU) rounds each op of an Adadelta step for float64, bfloat16
and float16: which candidate emulation gives its bits, as the fraction of
2^18 random elements (2^22 for the float64 square root) that match.

Run: .venv/bin/python difftest/python/dtype_ops.py
It prints one line per (op, candidate) and the CPU it ran on; the results
are recorded in fast/docs/numerics.md ("Other dtypes in torch 2.13").
"""
import platform

import numpy as np
import torch

torch.manual_seed(0)
N = 1 << 18


def rnd(dt, n=N):
    x = torch.randn(n, dtype=torch.float64) * torch.exp(torch.randn(n, dtype=torch.float64) * 2)
    return x.to(dt)


def f32(t):
    return t.to(torch.float32)


def same(a, b):
    """The fraction of elements with equal bits."""
    w = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return (a.view(w) == b.view(w)).double().mean().item()


def fma32(a, b, c):
    """fma(a, b, c) of float32 tensors, rounded once to float32 (the f64
    product of two f32 is exact, and f64 sum then f32 rounding is the single
    rounding except in double-rounding cases far rarer than 2^-18)."""
    return torch.from_numpy((a.double() * b.double() + c.double()).numpy().astype(np.float32))


def row(op, **candidates):
    print(f"{op:40s} " + "  ".join(f"{k}={v:.6f}" for k, v in candidates.items()))


def reduced(dt):
    a, b, c = rnd(dt).abs(), rnd(dt), rnd(dt)
    rho, eps, wd, lr = 0.9, 1e-6, 0.1, 0.7
    in_dt = lambda s: float(torch.tensor(s, dtype=dt))  # the scalar rounded to dt
    s32 = lambda s: float(np.float32(s))
    print(f"--- {dt}")
    mul = lambda s: (f32(a) * s).to(dt)
    row("Tensor.mul_(rho)", f32_rho=same(a.clone().mul_(rho), mul(s32(rho))), dt_rho=same(a.clone().mul_(rho), mul(in_dt(rho))))
    x = [a.clone()]
    torch._foreach_mul_(x, rho)
    row("_foreach_mul_(list, rho)", f32_rho=same(x[0], mul(s32(rho))), dt_rho=same(x[0], mul(in_dt(rho))))
    add = lambda s: (f32(a) + s).to(dt)
    row("Tensor.add(eps)", f32_eps=same(a.add(eps), add(s32(eps))), dt_eps=same(a.add(eps), add(in_dt(eps))))
    x = [a.clone()]
    torch._foreach_add_(x, eps)
    row("_foreach_add_(list, eps)", f32_eps=same(x[0], add(s32(eps))), dt_eps=same(x[0], add(in_dt(eps))))
    for name, alpha in (("Tensor.add(t, alpha=wd)", wd), ("Tensor.add_(t, alpha=-lr)", -lr)):
        got = b.clone().add_(c, alpha=alpha)
        k = lambda s: fma32(f32(c), torch.full_like(f32(c), s), f32(b)).to(dt)
        row(name, fma_dt_alpha=same(got, k(in_dt(alpha))), fma_f32_alpha=same(got, k(s32(alpha))),
            unfused_dt_alpha=same(got, (f32(b) + f32(c) * in_dt(alpha)).to(dt)))
        x = [b.clone()]
        torch._foreach_add_(x, [c], alpha=alpha)
        row("_foreach_" + name[7:], fma_dt_alpha=same(x[0], k(in_dt(alpha))), fma_f32_alpha=same(x[0], k(s32(alpha))))
    v = 1 - rho
    e_fma = lambda s: fma32(f32(b) * s, f32(c), f32(a)).to(dt)
    got = a.clone().addcmul_(b, c, value=v)
    row("Tensor.addcmul_(t1, t2, value=1-rho)", fma_v_t1_f32=same(got, e_fma(s32(v))), fma_v_t1_dt=same(got, e_fma(in_dt(v))),
        unfused=same(got, (f32(a) + f32(b) * s32(v) * f32(c)).to(dt)))
    x = [a.clone()]
    torch._foreach_addcmul_(x, [b], [c], value=v)
    row("_foreach_addcmul_", fma_v_t1_f32=same(x[0], e_fma(s32(v))), fma_v_t1_dt=same(x[0], e_fma(in_dt(v))))
    sq = torch.from_numpy(np.sqrt(f32(a).numpy())).to(dt)
    row("Tensor.sqrt_", f32_correctly_rounded_then_dt=same(a.sqrt(), sq))
    x = [a.clone()]
    torch._foreach_sqrt_(x)
    row("_foreach_sqrt_", f32_correctly_rounded_then_dt=same(x[0], sq))
    row("Tensor.div_ / mul_ (tensor)", div_f32_then_dt=same(b / (a + 1), (f32(b) / f32(a + 1)).to(dt)),
        mul_f32_then_dt=same(b * c, (f32(b) * f32(c)).to(dt)))


def float64():
    print("--- torch.float64")
    for scale in (1.0, 1e-300, 1e300):
        a = torch.rand(1 << 22, dtype=torch.float64) * 4 * scale
        got = torch.sqrt(a).numpy().view(np.int64)
        ref = np.sqrt(a.numpy()).view(np.int64)  # correctly rounded (IEEE sqrt)
        x = [a.clone()]
        torch._foreach_sqrt_(x)
        row(f"sqrt, x in [0, 4e{int(np.log10(scale))})", correctly_rounded=float((got == ref).mean()),
            max_ulp=float(np.abs(got - ref).max()), foreach_same=float((x[0].numpy().view(np.int64) == got).mean()))


print("torch", torch.__version__, "on", platform.machine(),
      next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"))
for dt in (torch.bfloat16, torch.float16):
    reduced(dt)
float64()
