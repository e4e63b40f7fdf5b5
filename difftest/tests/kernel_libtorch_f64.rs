//! float64: `adadelta::kernel` on `f64` slices against libtorch (through
//! tch) on `Double` tensors, bit for bit.
//!
//! * The square root alone: libtorch's float64 `torch.sqrt` is oneMKL's
//!   `vdSqrt` (EXHA on AMD, L9HA/Z0HA on Intel), which is **not** correctly
//!   rounded (about 1.4 % of uniform [0, 4) is 1 ulp off on AMD). The
//!   reproduce-libtorch numerics must give its bits on every path, over
//!   ranges of consecutive bit patterns where its seed and correction
//!   change (around 1, 2, 1.5 and just below 4) and over random patterns of
//!   every exponent, subnormals and special values included.
//! * Whole steps: several tensors of every tail length, several steps,
//!   every option, on every path.
//!
//! "Bit for bit" counts two NaNs as the same when both are quiet (fast's
//! NaN sign and payload are not determined: `fast/docs/numerics.md`, "NaN
//! bits"); every other result, signed zeros and infinities included, must
//! be identical. Case counts follow `PROPTEST_CASES` when set.

use adadelta::kernel::{self, Executor, Isa, Job, LibtorchSqrt, Numerics};
use adadelta::Coefficients;
use adadelta_difftest::accuracy::NanBits;
use adadelta_difftest::case::Hyper;
use adadelta_difftest::implementations::{path_executor, paths_here};
use adadelta_difftest::libtorch;
use adadelta_difftest::strategies::{cases_or, hyper};
use adadelta_difftest::suite::Rng;
use proptest::prelude::*;
use tch::{Kind, Tensor};

/// The reproduce-libtorch numerics in float64 on this machine, or `None`
/// (and a note) where they are not computable here.
fn numerics() -> Option<Numerics> {
    let reason = match LibtorchSqrt::detect() {
        Ok(k) => {
            let mut x = [2.0f64];
            match kernel::sqrt(&Executor::with_numerics(Numerics::Libtorch(k)), &mut x) {
                Ok(()) => return Some(Numerics::Libtorch(k)),
                Err(e) => e.to_string(),
            }
        }
        Err(e) => e.to_string(),
    };
    eprintln!("SKIPPED: {reason}");
    None
}

/// Quiet NaN against quiet NaN, else the same bits.
fn same(a: f64, b: f64) -> bool {
    NanBits::QuietAnyPayload.same_f64(a, b)
}

/// The first index where `a` and `b` differ, with both values.
fn first_difference(a: &[f64], b: &[f64]) -> Option<String> {
    (0..a.len()).find(|&i| !same(a[i], b[i])).map(|i| {
        format!(
            "[{i}] fast {:e} ({:#018x}) vs libtorch {:e} ({:#018x})",
            a[i],
            a[i].to_bits(),
            b[i],
            b[i].to_bits()
        )
    })
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t).unwrap()
}

/// The input sets of the square-root check, `n` elements each.
fn sqrt_sets(n: u64) -> Vec<(&'static str, Vec<f64>)> {
    let run = |from: f64, back: u64| -> Vec<f64> {
        let b = from.to_bits() - back;
        (0..n).map(|i| f64::from_bits(b + i)).collect()
    };
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let random: Vec<f64> = (0..n)
        .map(|_| {
            let r = rng.next_u64();
            // A uniform exponent over 0..=0x7fe (subnormals included), a
            // random mantissa, both signs now and then.
            let e = (r >> 52) % 0x7ff;
            let sign = if r & 0xff == 0 { 1 << 63 } else { 0 };
            f64::from_bits(sign | e << 52 | (rng.next_u64() & ((1 << 52) - 1)))
        })
        .collect();
    let uniform: Vec<f64> = (0..n)
        .map(|_| (rng.next_u64() >> 11) as f64 * 2f64.powi(-51))
        .collect();
    let mut special = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0123),
        f64::from_bits(0xfff8_0000_0000_0123),
        -1.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        2f64.powi(1022),
        -f64::from_bits(1),
    ];
    special.extend((0..n / 4).map(|i| f64::from_bits(1 + i)));
    special.extend((0..n / 4).map(|i| f64::from_bits(f64::MAX.to_bits() - i)));
    special.extend((0..n / 4).map(|i| f64::from_bits(2f64.powi(1022).to_bits() - n / 8 + i)));
    special.extend((0..n / 4).map(|i| f64::from_bits((1 << 52) - n / 8 + i)));
    vec![
        ("from 1.0", run(1.0, 0)),
        ("around 2.0", run(2.0, n / 2)),
        ("from 1.5", run(1.5, 0)),
        ("just below 4.0", run(4.0, n)),
        ("random patterns", random),
        ("uniform [0, 4)", uniform),
        ("special", special),
    ]
}

/// Checks the square root on every set and path; returns how many of
/// libtorch's finite results differ from the correctly rounded root.
fn check_sqrt(n: u64) -> Option<u64> {
    let numerics = numerics()?;
    let _ = Tensor::from(1.0f64).sqrt(); // warm oneMKL's dispatch
    let mut not_ieee = 0;
    for (name, x) in sqrt_sets(n) {
        let torch = to_vec(&Tensor::from_slice(&x).sqrt());
        not_ieee += (0..x.len())
            .filter(|&i| !torch[i].is_nan() && torch[i].to_bits() != x[i].sqrt().to_bits())
            .count() as u64;
        for path in paths_here() {
            let mut ours = x.clone();
            kernel::sqrt(&path_executor(numerics, path), &mut ours).unwrap();
            if let Some(d) = first_difference(&ours, &torch) {
                panic!("{numerics:?} on {path:?}, set {name}: {d}");
            }
        }
    }
    eprintln!("{numerics:?}: torch.sqrt not correctly rounded on {not_ieee} inputs");
    Some(not_ieee)
}

/// 2^16 elements per set in the suite. Where libtorch's square root is
/// oneMKL's recipe, some of its results are not correctly rounded, so the
/// check also shows that the test can tell the recipe from IEEE `sqrt`.
#[test]
fn reproduce_libtorch_f64_sqrt_equals_torch_sqrt_on_every_path() {
    if let Some(not_ieee) = check_sqrt(1 << 16) {
        assert!(not_ieee > 0, "torch.sqrt looked correctly rounded");
    }
}

/// 2^24 elements per set (about 117 M roots per path); run with
/// `cargo test --release -p adadelta-difftest --test kernel_libtorch_f64 -- --ignored`.
#[test]
#[ignore = "2^24 elements per set, about a minute in release"]
fn reproduce_libtorch_f64_sqrt_equals_torch_sqrt_on_2_24_per_set() {
    check_sqrt(1 << 24);
}

/// `steps` steps of tensors of `sizes` with random data (`wide`: every
/// exponent), through the kernel on `path` and through libtorch; the
/// first difference, if any.
fn check_steps(
    h: &Hyper,
    numerics: Numerics,
    path: Isa,
    sizes: &[usize],
    steps: usize,
    seed: u64,
    wide: bool,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let mut value = |state: bool| -> f64 {
        let r = rng.next_u64();
        let x = if wide {
            let e = 0x3ff - 60 + (r >> 56) as i64 % 120;
            f64::from_bits((e as u64) << 52 | (rng.next_u64() >> 12))
        } else {
            (r >> 11) as f64 * 2f64.powi(-52) - 1.0
        };
        if state {
            x.abs()
        } else {
            x
        }
    };
    let c = Coefficients::new(&h.to_fast()).unwrap();
    let mut fast: Vec<[Vec<f64>; 3]> = sizes
        .iter()
        .map(|&n| {
            let p = (0..n).map(|_| value(false)).collect();
            let v = (0..n).map(|_| value(true) * 1e-3).collect();
            let u = (0..n).map(|_| value(true) * 1e-3).collect();
            [p, v, u]
        })
        .collect();
    let mut torch: Vec<[Tensor; 3]> = fast
        .iter()
        .map(|t| t.each_ref().map(|x| Tensor::from_slice(x)))
        .collect();
    for step in 0..steps {
        let grads: Vec<Vec<f64>> = sizes
            .iter()
            .map(|&n| (0..n).map(|_| value(false)).collect())
            .collect();
        let mut jobs: Vec<Job<f64>> = fast
            .iter_mut()
            .zip(&grads)
            .map(|([p, v, u], g)| Job {
                coeffs: &c,
                param: p,
                grad: g,
                square_avg: v,
                acc_delta: u,
            })
            .collect();
        kernel::run(&mut jobs, &path_executor(numerics, path)).map_err(|e| e.to_string())?;
        for ([p, v, u], g) in torch.iter_mut().zip(&grads) {
            libtorch::step(h, p, &Tensor::from_slice(g), v, u);
        }
        for (i, (f, t)) in fast.iter().zip(&torch).enumerate() {
            for (k, name) in ["param", "square_avg", "acc_delta"].iter().enumerate() {
                assert_eq!(t[k].kind(), Kind::Double);
                if let Some(d) = first_difference(&f[k], &to_vec(&t[k])) {
                    return Err(format!("step {step}, tensor {i} {name}: {d}"));
                }
            }
        }
    }
    Ok(())
}

/// Every length from 1 to 70 (every tail of every path) and a few large
/// tensors, three steps, several option sets, on every path.
#[test]
fn reproduce_libtorch_f64_steps_equal_libtorch_at_every_length() {
    let Some(numerics) = numerics() else { return };
    tch::set_num_threads(1);
    let mut sizes: Vec<usize> = (1..=70).collect();
    sizes.extend([2047, 2049, 32_769]);
    let hypers = [
        Hyper::default(),
        Hyper {
            lr: 0.37,
            weight_decay: 0.1,
            maximize: true,
            ..Hyper::default()
        },
        Hyper {
            lr: 0.05,
            rho: 0.95,
            eps: 1e-8,
            ..Hyper::default()
        },
        Hyper {
            lr: 2.0,
            rho: 0.0,
            eps: 0.0,
            weight_decay: 1e-300,
            ..Hyper::default()
        },
    ];
    for (i, h) in hypers.iter().enumerate() {
        for wide in [false, true] {
            for path in paths_here() {
                if let Err(e) = check_steps(h, numerics, path, &sizes, 3, 7 + i as u64, wide) {
                    panic!("{h:?} wide={wide} {path:?}: {e}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(32), ..ProptestConfig::default() })]

    /// Random options, sizes, steps and data, on every path.
    #[test]
    fn reproduce_libtorch_f64_equals_libtorch(
        h in hyper(),
        sizes in prop::collection::vec(prop_oneof![3 => 1usize..=64, 1 => 65usize..=5000], 1..=4),
        steps in 1usize..=4,
        seed in any::<u64>(),
        wide in any::<bool>(),
    ) {
        let Some(numerics) = numerics() else { return Ok(()) };
        for path in paths_here() {
            if let Err(e) = check_steps(&h, numerics, path, &sizes, steps, seed, wide) {
                return Err(TestCaseError::fail(format!("{path:?}: {e}")));
            }
        }
    }
}
