//! `torch.optim.Adadelta`'s single-tensor step (the CPU default,
//! `foreach=False`), rebuilt from `tch` 0.26 tensor ops so that it runs
//! inside libtorch and reproduces PyTorch 2.13 **bit for bit**.
//!
//! `tch` exposes `add_` and `addcmul_` without PyTorch's `alpha` / `value`
//! arguments. Each scalar is therefore passed as a 0-dim f32 tensor holding
//! `f32(double expression)` (what ATen's `Scalar::to<float>()` produces from
//! the Python float) and every multiply-add is an `addcmul` with the implicit
//! `value = 1`; `1 * t1` is exact, so ATen's FMA-contracted kernels round
//! exactly as the Python calls do (see `fast/docs/numerics.md`, "PyTorch 2.13's
//! f32 step"):
//!
//! | PyTorch (`_single_tensor_adadelta`)                  | here                                    |
//! |------------------------------------------------------|-----------------------------------------|
//! | `grad = -grad` (maximize)                            | `g = grad.neg()`                        |
//! | `grad = grad.add(param, alpha=wd)` (if `wd != 0`)    | `g = g.addcmul(param, wd_t)`            |
//! | `square_avg.mul_(rho).addcmul_(g, g, value=1-rho)`   | `s.mul_(rho_t); s.addcmul_(g*c_t, g)`   |
//! | `std = square_avg.add(eps).sqrt_()`                  | `std = (s + eps_t).sqrt()`              |
//! | `delta = acc_delta.add(eps).sqrt_()`                 | `d = (a + eps_t).sqrt()`                |
//! | `delta.div_(std).mul_(grad)`                         | `d = d / std * g`                       |
//! | `acc_delta.mul_(rho).addcmul_(d, d, value=1-rho)`    | `a.mul_(rho_t); a.addcmul_(d*c_t, d)`   |
//! | `param.add_(delta, alpha=-lr)`                       | `p.addcmul_(d, neglr_t)`                |
//!
//! with `rho_t = f32(rho)`, `c_t = f32(1.0 - rho)` (subtracted in f64),
//! `eps_t = f32(eps)`, `wd_t = f32(wd)` and `neglr_t = f32(-lr)`. On float64
//! tensors ([`step`] and [`run`] take both) each scalar is the f64 value itself.
//!
//! # Threads
//!
//! [`run`] runs libtorch with **one** intra-op thread; [`run_with_threads`]
//! takes the count explicitly. With torch's OpenMP backend the thread count
//! is per calling thread (OpenMP's `nthreads-var` ICV and MKL's local
//! setting), so both set it on the current thread right before running and
//! check it with [`tch::get_num_threads`]. [`step`] itself uses whatever the
//! current thread is set to. The thread count only moves where ATen splits
//! the work; it does not change results (ATen's element-wise CPU kernels compute each
//! element alone, whatever the split), which the tests check.

use tch::{Device, Kind, TchError, Tensor};

use crate::case::{Case, Hyper, Snapshot, Trajectory};
use crate::dtype::Dtype;

/// The scalar operands of one step, each a 0-dim f32 CPU tensor.
struct Scalars {
    /// `f32(rho)`.
    rho: Tensor,
    /// `f32(1.0 - rho)`, the subtraction done in f64 like Python's `1 - rho`.
    one_minus_rho: Tensor,
    /// `f32(eps)`.
    eps: Tensor,
    /// `f32(-lr)`.
    neg_lr: Tensor,
    /// `f32(weight_decay)`, `None` when `weight_decay == 0.0` (PyTorch skips
    /// the add then).
    weight_decay: Option<Tensor>,
}

impl Scalars {
    /// The scalars for tensors of `kind`: f32 as above; for `Double` the
    /// Python floats themselves, as ATen's float64 kernels take them.
    fn new(h: &Hyper, kind: Kind) -> Self {
        let t = |x: f64| match kind {
            Kind::Double => Tensor::from(x),
            _ => Tensor::from(x as f32),
        };
        Scalars {
            rho: t(h.rho),
            one_minus_rho: t(1.0 - h.rho),
            eps: t(h.eps),
            neg_lr: t(-h.lr),
            weight_decay: (h.weight_decay != 0.0).then(|| t(h.weight_decay)),
        }
    }
}

fn check_operand(name: &str, t: &Tensor, size: &[i64], want: Kind) -> Result<(), TchError> {
    let kind = t.f_kind()?;
    if kind != want {
        return Err(TchError::Kind(format!(
            "{name}: expected {want:?} like param (Float or Double), got {kind:?}"
        )));
    }
    if t.device() != Device::Cpu {
        return Err(TchError::Convert(format!(
            "{name}: expected a CPU tensor, got {:?}",
            t.device()
        )));
    }
    if t.size() != size {
        return Err(TchError::Shape(format!(
            "{name}: shape {:?} differs from param's {size:?}",
            t.size()
        )));
    }
    if !t.is_contiguous() {
        return Err(TchError::Shape(format!("{name}: not contiguous")));
    }
    Ok(())
}

fn step_with(
    sc: &Scalars,
    maximize: bool,
    param: &mut Tensor,
    grad: &Tensor,
    square_avg: &mut Tensor,
    acc_delta: &mut Tensor,
) -> Result<(), TchError> {
    let size = param.size();
    let kind = param.f_kind()?;
    if !matches!(kind, Kind::Float | Kind::Double) {
        return Err(TchError::Kind(format!(
            "param: expected Float (f32) or Double (f64), got {kind:?}"
        )));
    }
    check_operand("grad", grad, &size, kind)?;
    check_operand("square_avg", square_avg, &size, kind)?;
    check_operand("acc_delta", acc_delta, &size, kind)?;
    check_operand("param", param, &size, kind)?;

    // grad = grad if not maximize else -grad (a new tensor; the input is untouched)
    let mut g = if maximize {
        grad.f_neg()?
    } else {
        grad.shallow_clone()
    };
    // grad = grad.add(param, alpha=weight_decay)  ==  fma(param, f32(wd), grad)
    if let Some(wd) = &sc.weight_decay {
        g = g.f_addcmul(param, wd)?;
    }
    // square_avg.mul_(rho).addcmul_(grad, grad, value=1-rho)
    let _ = square_avg.f_mul_(&sc.rho)?;
    let _ = square_avg.f_addcmul_(&g.f_mul(&sc.one_minus_rho)?, &g)?;
    // std = square_avg.add(eps).sqrt_()
    let std = square_avg.f_add(&sc.eps)?.f_sqrt()?;
    // delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
    let delta = acc_delta.f_add(&sc.eps)?.f_sqrt()?.f_div(&std)?.f_mul(&g)?;
    // acc_delta.mul_(rho).addcmul_(delta, delta, value=1-rho)
    let _ = acc_delta.f_mul_(&sc.rho)?;
    let _ = acc_delta.f_addcmul_(&delta.f_mul(&sc.one_minus_rho)?, &delta)?;
    // param.add_(delta, alpha=-lr)  ==  fma(delta, f32(-lr), param)
    let _ = param.f_addcmul_(&delta, &sc.neg_lr)?;
    Ok(())
}

/// One Adadelta step on one tensor, in place, exactly as
/// `torch.optim.Adadelta`'s single-tensor path does it (without the step
/// counter, which the math never reads).
///
/// `param`, `grad`, `square_avg` and `acc_delta` must be contiguous CPU
/// tensors of the same shape and kind, f32 or f64 (float64 takes the f64
/// scalars, as torch does); `grad` is not modified. Runs with the current
/// thread's libtorch thread count.
///
/// # Panics
/// If an operand has the wrong kind, device, shape or layout, or libtorch
/// reports an error. [`try_step`] returns these instead.
pub fn step(
    hyper: &Hyper,
    param: &mut Tensor,
    grad: &Tensor,
    square_avg: &mut Tensor,
    acc_delta: &mut Tensor,
) {
    if let Err(e) = try_step(hyper, param, grad, square_avg, acc_delta) {
        panic!("libtorch Adadelta step failed: {e}");
    }
}

/// [`step`], returning operand and libtorch errors instead of panicking.
pub fn try_step(
    hyper: &Hyper,
    param: &mut Tensor,
    grad: &Tensor,
    square_avg: &mut Tensor,
    acc_delta: &mut Tensor,
) -> Result<(), TchError> {
    step_with(
        &Scalars::new(hyper, param.f_kind()?),
        hyper.maximize,
        param,
        grad,
        square_avg,
        acc_delta,
    )
}

/// Per-parameter optimizer state, created lazily like PyTorch's.
struct State {
    /// The step counter, a 0-dim f32 tensor (`_get_scalar_dtype()`).
    step: Tensor,
    square_avg: Tensor,
    acc_delta: Tensor,
}

fn to_vec<T: Dtype>(t: &Tensor) -> Result<Vec<T>, TchError> {
    Vec::<T>::try_from(&t.f_reshape([-1])?)
}

/// Sets libtorch's intra-op thread count for the current thread and checks it.
fn set_threads(threads: i32) -> Result<(), TchError> {
    if threads < 1 {
        return Err(TchError::Convert(format!(
            "thread count must be >= 1, got {threads}"
        )));
    }
    // Let ATen's lazy per-thread initialisation run first (it would otherwise
    // run at the first parallel op and apply the process-wide value, which
    // another thread may have set), then set ours.
    let _ = tch::get_num_threads();
    tch::set_num_threads(threads);
    let got = tch::get_num_threads();
    if got != threads {
        return Err(TchError::Convert(format!(
            "asked libtorch for {threads} threads, it reports {got}"
        )));
    }
    Ok(())
}

/// [`run_with_threads`], returning errors instead of panicking.
pub fn try_run_with_threads<T: Dtype>(
    case: &Case<T>,
    threads: i32,
) -> Result<Trajectory<T>, TchError> {
    set_threads(threads)?;
    // Warm MKL VML's sqrt dispatch on one element (one thread) before any
    // multi-threaded sqrt: concurrent first calls can pick a wrong kernel
    // (pytorch#188792, oneMKL 2024.2).
    let _ = Tensor::from(1.0f32).f_sqrt()?;

    let sc = Scalars::new(&case.hyper, T::KIND);
    let one = Tensor::from(1.0f32);
    let mut params = case
        .params
        .iter()
        .map(|p| Tensor::f_from_slice(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut state: Vec<Option<State>> = params.iter().map(|_| None).collect();
    let mut traj: Trajectory<T> = Vec::with_capacity(case.grads.len());

    for (t, grads) in case.grads.iter().enumerate() {
        if grads.len() != params.len() {
            return Err(TchError::Shape(format!(
                "case {:?} step {}: {} gradients for {} params",
                case.name,
                t + 1,
                grads.len(),
                params.len()
            )));
        }
        for ((p, g), st) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            // p.grad is None: skipped, no state created, param untouched.
            let Some(g) = g else { continue };
            let g = Tensor::f_from_slice(g)?;
            let st = match st {
                Some(st) => st,
                None => st.insert(State {
                    step: Tensor::from(0.0f32),
                    square_avg: p.f_zeros_like()?,
                    acc_delta: p.f_zeros_like()?,
                }),
            };
            // step += 1 (in place on the 0-dim f32 tensor)
            let _ = st.step.f_add_(&one)?;
            step_with(
                &sc,
                case.hyper.maximize,
                p,
                &g,
                &mut st.square_avg,
                &mut st.acc_delta,
            )?;
        }
        let mut snap = Snapshot {
            params: Vec::with_capacity(params.len()),
            square_avg: Vec::with_capacity(params.len()),
            acc_delta: Vec::with_capacity(params.len()),
            step: Vec::with_capacity(params.len()),
        };
        for (p, st) in params.iter().zip(&state) {
            snap.params.push(to_vec(p)?);
            match st {
                Some(st) => {
                    snap.square_avg.push(Some(to_vec(&st.square_avg)?));
                    snap.acc_delta.push(Some(to_vec(&st.acc_delta)?));
                    snap.step.push(Some(f32::try_from(&st.step)?));
                }
                None => {
                    snap.square_avg.push(None);
                    snap.acc_delta.push(None);
                    snap.step.push(None);
                }
            }
        }
        traj.push(snap);
    }
    Ok(traj)
}

/// Runs a whole [`Case`] through libtorch with `threads` intra-op threads
/// (set on the current thread, see the module docs): parameters of `T`'s
/// dtype (`Float` or `Double`), fresh state, lazy initialisation the first
/// time a parameter has a gradient, a step counter per parameter kept as an
/// f32 tensor; returns the snapshot after every step.
///
/// # Panics
/// On malformed cases (gradient count or length mismatch) or libtorch errors;
/// [`try_run_with_threads`] returns them instead.
pub fn run_with_threads<T: Dtype>(case: &Case<T>, threads: i32) -> Trajectory<T> {
    match try_run_with_threads(case, threads) {
        Ok(t) => t,
        Err(e) => panic!("libtorch Adadelta run of case {:?} failed: {e}", case.name),
    }
}

/// [`run_with_threads`] with one libtorch thread.
pub fn run<T: Dtype>(case: &Case<T>) -> Trajectory<T> {
    run_with_threads(case, 1)
}
