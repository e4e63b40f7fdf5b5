//! `Numerics::ReproduceLibtorch` against libtorch (through tch), bit for bit:
//! every size from 1 up (every SIMD tail length, ATen's and oneMKL's
//! threading grains, large tensors), every option, 1 and 2 threads on both
//! sides, multi-tensor steps with absent gradients.
//!
//! "Bit for bit" counts NaN as equal to NaN (payloads are not specified by
//! IEEE 754 and differ between instruction encodings); every other result,
//! including signed zeros and infinities, must be identical.
//!
//! The exhaustive check of the square root alone over all 2^32 inputs is
//! `#[ignore]`d (about a minute); run it with
//! `cargo test --release -p adadelta-difftest --test kernel_libtorch -- --ignored`
//! (see `fast/docs/numerics.md` for the command per oneMKL kernel and the result).
//!
//! Case counts follow `PROPTEST_CASES` when set.

use std::sync::Arc;

use adadelta::kernel::{self, Executor, Isa, LibtorchSqrt, Numerics, Threads};
use adadelta_difftest::accuracy;
use adadelta_difftest::case::{Case, Hyper, Trajectory};
use adadelta_difftest::libtorch;
use adadelta_difftest::strategies::{cases_or, hyper};
use adadelta_difftest::suite::{random_case, Values};
use proptest::prelude::*;

/// The reproduce-libtorch numerics, or `None` (and a note) where this
/// machine's libtorch cannot be reproduced: the tests then have nothing to
/// check, which they say instead of failing.
fn numerics() -> Option<Numerics> {
    match LibtorchSqrt::detect() {
        Ok(k) => {
            eprintln!("reproducing libtorch's sqrt {}", k.mkl_kernel());
            Some(Numerics::ReproduceLibtorch)
        }
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

/// fast through `adadelta::kernel::run`, one multi-tensor call per step.
fn run_fast(case: &Case, exec: &Executor) -> Trajectory {
    adadelta_difftest::implementations::run_kernel(case, exec)
}

fn executor(numerics: Numerics, threads: usize) -> Executor {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    Executor {
        numerics,
        threads: Threads::Pool(Arc::new(pool)),
        // Small pieces, so that 2 threads really split even small cases.
        grain: 64,
        ..Executor::default()
    }
}

fn check(
    case: &Case,
    numerics: Numerics,
    fast_threads: usize,
    torch_threads: i32,
) -> Result<(), String> {
    let fast = run_fast(case, &executor(numerics, fast_threads));
    let torch = libtorch::run_with_threads(case, torch_threads);
    let (eq, n) = accuracy::bit_identical_with(&fast, &torch, accuracy::NanBits::QuietAnyPayload);
    if eq == n {
        return Ok(());
    }
    Err(format!(
        "fast ReproduceLibtorch ({fast_threads} threads) and libtorch ({torch_threads} threads) \
         differ on {} of {n} elements; first: {}",
        n - eq,
        accuracy::first_difference_with(case, &fast, &torch, accuracy::NanBits::QuietAnyPayload)
            .unwrap_or_default()
    ))
}

/// Every length from 1 to 130 (all tails of ATen's 32-float body, oneMKL's
/// 16/8/4-lane loops and this crate's), as 130 tensors of one step list,
/// plus large tensors around ATen's and oneMKL's threading grains, with
/// several option sets, 1 and 2 threads on each side.
#[test]
fn every_length_and_option() {
    let Some(numerics) = numerics() else { return };
    let mut sizes: Vec<usize> = (1..=130).collect();
    sizes.extend([
        2047,
        2048,
        2049,
        32_767,
        32_768,
        32_769,
        65_537,
        1 << 20 | 13,
    ]);
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
            weight_decay: 1e-30,
            ..Hyper::default()
        },
        Hyper {
            lr: 0.5,
            rho: 1.0,
            eps: 1e-3,
            ..Hyper::default()
        },
    ];
    for (i, h) in hypers.into_iter().enumerate() {
        for kind in [Values::Normal, Values::Wide] {
            let case = random_case("lengths", 100 + i as u64, h, &sizes, 3, kind, 0.1);
            for (ft, tt) in [(1, 1), (2, 2), (2, 1)] {
                if let Err(e) = check(&case, numerics, ft, tt) {
                    panic!("{h:?} {kind:?}: {e}");
                }
            }
        }
    }
}

/// Sizes: every tail length, around oneMKL's sqrt grain (2048) and ATen's
/// grain (32768), and larger.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 1usize..=64,
        2 => 65usize..=3000,
        1 => 2040usize..=2060,
        1 => 32_760usize..=32_800,
        1 => 60_000usize..=140_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(48), ..ProptestConfig::default() })]

    /// Random cases: 1 to 4 tensors, 1 to 4 steps, absent gradients, ordinary
    /// or extreme values, random options and thread counts.
    #[test]
    fn reproduce_libtorch_equals_libtorch(
        h in hyper(),
        sizes in prop::collection::vec(size(), 1..=4),
        steps in 1usize..=4,
        seed in any::<u64>(),
        wide in any::<bool>(),
        absent in prop_oneof![Just(0.0), Just(0.3)],
        fast_threads in 1usize..=2,
        torch_threads in 1i32..=2,
    ) {
        let Some(numerics) = numerics() else { return Ok(()) };
        let kind = if wide { Values::Wide } else { Values::Normal };
        let case = random_case("proptest", seed, h, &sizes, steps, kind, absent);
        if let Err(e) = check(&case, numerics, fast_threads, torch_threads) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// The square root alone, on every path, over all 2^32 f32 bit patterns,
/// against libtorch's `torch.sqrt` (`Tensor::sqrt`, oneMKL VML) on the same
/// chunk. Prints the figures for `fast/docs/numerics.md`.
#[test]
#[ignore = "exhaustive: all 2^32 inputs, about a minute in release"]
fn exhaustive_sqrt_equals_torch_sqrt() {
    let Some(numerics) = numerics() else { return };
    let k = numerics.libtorch_sqrt().unwrap().unwrap();
    let paths: Vec<Isa> = Isa::ALL.into_iter().filter(|p| p.is_supported()).collect();
    tch::set_num_threads(2);
    let _ = tch::Tensor::from(1.0f32).sqrt(); // warm oneMKL's dispatch (pytorch#188792)
    const CHUNK: u64 = 1 << 24;
    let (mut mismatches, mut nan_pairs, mut not_ieee) = (vec![0u64; paths.len()], 0u64, 0u64);
    let mut first: Vec<Option<u32>> = vec![None; paths.len()];
    let mut x = vec![0f32; CHUNK as usize];
    for c in 0..(1u64 << 32) / CHUNK {
        for (i, x) in x.iter_mut().enumerate() {
            *x = f32::from_bits((c * CHUNK) as u32 + i as u32);
        }
        let t = tch::Tensor::from_slice(&x).sqrt();
        let torch = Vec::<f32>::try_from(&t).unwrap();
        for (j, &path) in paths.iter().enumerate() {
            let mut ours = x.clone();
            let exec = Executor {
                numerics,
                isa: Some(path),
                ..Executor::default()
            };
            kernel::sqrt(&exec, &mut ours).unwrap();
            for i in 0..x.len() {
                let (a, b) = (ours[i], torch[i]);
                // fast's sqrt of a negative is sqrtps's 0xffc00000, oneMKL's
                // 0x7fc00000 (NanBits::QuietAnyPayload says why that is allowed).
                if !accuracy::NanBits::QuietAnyPayload.same(a, b) {
                    mismatches[j] += 1;
                    first[j].get_or_insert(x[i].to_bits());
                }
            }
        }
        for i in 0..x.len() {
            let b = torch[i];
            if b.is_nan() {
                nan_pairs += 1;
            } else if b.to_bits() != x[i].sqrt().to_bits() {
                not_ieee += 1;
            }
        }
    }
    eprintln!(
        "{}: all 2^32 inputs; torch.sqrt differs from the correctly rounded sqrt on {not_ieee} \
         non-NaN results; {nan_pairs} NaN results",
        k.mkl_kernel()
    );
    for (j, path) in paths.iter().enumerate() {
        eprintln!(
            "  path {:7}: {} mismatches with torch.sqrt{}",
            path.name(),
            mismatches[j],
            first[j].map_or(String::new(), |b| format!(" (first input {b:#010x})"))
        );
    }
    assert!(mismatches.iter().all(|&m| m == 0), "{mismatches:?}");
}
