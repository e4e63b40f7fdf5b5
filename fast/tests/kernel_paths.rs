//! Every dispatch path, with every [`DivSqrt`] it can run, against the
//! scalar path, bit for bit (no tolerance: they compute the same correctly
//! rounded or oneMKL operations), in both numerics; the estimated square
//! root over all 2^32 inputs against `vsqrtps` (the division alone, on the
//! cases nearest a rounding boundary, is checked against the MPFR oracle
//! in `difftest/tests/kernel_division.rs`); thread-count independence; the
//! `ADADELTA_KERNEL` override. No libtorch needed.
//!
//! "Bit for bit" treats every NaN as equal to every other NaN: IEEE 754 does
//! not fix NaN payloads, and x86 propagates the payload of whichever NaN
//! operand comes first in an instruction's encoding, which differs between
//! scalar code and intrinsics. All non-NaN results, including the signs of
//! zeros and infinities, must be identical.
//!
//! Case counts follow `PROPTEST_CASES` when set.

use std::sync::Arc;

use adadelta::half::{bf16, f16};
use adadelta::kernel::{
    run, sqrt, DivSqrt, Element, Executor, Isa, Job, LibtorchSqrt, Numerics, Threads,
};
use adadelta::{Coefficients, Hyperparams};
use proptest::prelude::*;

fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Bit for bit, except that two NaNs are the same when both are quiet: the
/// paths' NaN sign and payload differ (measured: the scalar, AVX2 and
/// AVX-512 builds of the update pick different NaN operands, since LLVM
/// chooses the operand order of commutative ops and each FMA's form, and
/// Rust promises no NaN payload); every NaN an update returns is quiet.
fn same<E: Float>(a: E, b: E) -> bool {
    let quiet = |x: E| x.is_nan() && x.bits() & E::QUIET != 0;
    (a.bits() == b.bits() && !a.is_nan()) || (quiet(a) && quiet(b))
}

/// The two element types, as these tests look at them.
trait Float: Element {
    /// The quiet bit of a NaN.
    const QUIET: u64;
    /// 1.
    const ONE: Self;
    fn is_nan(self) -> bool;
}

impl Float for f32 {
    const QUIET: u64 = 0x0040_0000;
    const ONE: f32 = 1.0;
    fn is_nan(self) -> bool {
        self.is_nan()
    }
}

impl Float for f64 {
    const QUIET: u64 = 0x0008_0000_0000_0000;
    const ONE: f64 = 1.0;
    fn is_nan(self) -> bool {
        self.is_nan()
    }
}

impl Float for bf16 {
    const QUIET: u64 = 0x0040;
    const ONE: bf16 = bf16::ONE;
    fn is_nan(self) -> bool {
        self.is_nan()
    }
}

impl Float for f16 {
    const QUIET: u64 = 0x0200;
    const ONE: f16 = f16::ONE;
    fn is_nan(self) -> bool {
        self.is_nan()
    }
}

/// bfloat16 or float16 values: ordinary ones, and raw bit patterns (every
/// class: zeros, subnormals, the largest, infinities, NaNs).
fn value16<H: Float>(of: fn(f32) -> H, bits: fn(u16) -> H) -> impl Strategy<Value = H> {
    prop_oneof![
        6 => (-4.0f32..4.0).prop_map(of),
        1 => (0.0f32..1e-3).prop_map(of),
        3 => any::<u16>().prop_map(bits),
    ]
}

fn assert_same<E: Float>(what: &str, a: &[E], b: &[E]) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    if let Some(i) = (0..a.len()).find(|&i| !same(a[i], b[i])) {
        return Err(TestCaseError::fail(format!(
            "{what}[{i}]: {:?} ({:#x}) vs scalar {:?} ({:#x})",
            a[i],
            a[i].bits(),
            b[i],
            b[i].bits()
        )));
    }
    Ok(())
}

/// Every (path, division and square roots) pair this machine can run.
fn paths_here() -> Vec<(Isa, DivSqrt)> {
    Isa::ALL
        .into_iter()
        .flat_map(|i| DivSqrt::ALL.map(|d| (i, d)))
        .filter(|(i, d)| d.runs_with(*i))
        .collect()
}

/// The executor of one path on the calling thread.
fn on(isa: Isa, div_sqrt: DivSqrt, numerics: Numerics) -> Executor {
    Executor {
        numerics,
        isa: Some(isa),
        div_sqrt: Some(div_sqrt),
        threads: Threads::Single,
        ..Executor::default()
    }
}

/// The scalar path: the definition every other is checked against.
fn scalar(numerics: Numerics) -> Executor {
    on(Isa::Scalar, DivSqrt::Hardware, numerics)
}

/// f32 values of every class: ordinary, ±0, subnormal, tiny, huge, ±inf,
/// NaN, and raw bit patterns.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -4.0f32..4.0,
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        1 => (1u32..0x0080_0000, any::<bool>())
            .prop_map(|(b, s)| f32::from_bits(b | if s { 0x8000_0000 } else { 0 })),
        1 => -1e-25f32..1e-25,
        1 => prop_oneof![1e18f32..3.4e38, -3.4e38f32..-1e18],
        1 => prop_oneof![Just(f32::INFINITY), Just(f32::NEG_INFINITY), Just(f32::NAN)],
        2 => any::<u32>().prop_map(f32::from_bits),
    ]
}

/// State values: mostly non-negative (as real state is), sometimes anything.
fn state_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => 0.0f32..4.0,
        1 => Just(0.0f32),
        1 => (0u32..0x0080_0000).prop_map(f32::from_bits),
        1 => 0.0f32..1e-30,
        1 => 1e30f32..3.4e38,
        // just below f32::MAX, where EXHA switches to IEEE
        1 => (0x7f7f_e000u32..0x7f80_0000).prop_map(f32::from_bits),
        2 => any::<u32>().prop_map(f32::from_bits),
    ]
}

fn hyper() -> impl Strategy<Value = Hyperparams> {
    (
        prop_oneof![Just(0.0), Just(1.0), 0.0..2.0f64],
        prop_oneof![Just(0.0), Just(1.0), Just(0.9), 0.0..1.0f64],
        prop_oneof![Just(0.0), Just(1e-6), Just(1e-30), 1e-10..1e-2f64],
        prop_oneof![Just(0.0), Just(0.0), 0.0..0.5f64],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(lr, rho, eps, weight_decay, maximize, foreach)| Hyperparams {
                lr,
                rho,
                eps,
                weight_decay,
                maximize,
                foreach,
            },
        )
}

/// f64 values of every class, as [`value`] for f32.
fn value64() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -4.0f64..4.0,
        1 => Just(0.0f64),
        1 => Just(-0.0f64),
        1 => (1u64..1 << 52, any::<bool>())
            .prop_map(|(b, s)| f64::from_bits(b | if s { 1 << 63 } else { 0 })),
        1 => -1e-200f64..1e-200,
        1 => prop_oneof![1e150f64..1.7e308, -1.7e308f64..-1e150],
        1 => prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN)],
        2 => any::<u64>().prop_map(f64::from_bits),
    ]
}

/// f64 state values: mostly non-negative, sometimes anything.
fn state_value64() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0f64..4.0,
        1 => Just(0.0f64),
        1 => (0u64..1 << 52).prop_map(f64::from_bits),
        1 => 0.0f64..1e-300,
        1 => 1e300f64..1.7e308,
        2 => any::<u64>().prop_map(f64::from_bits),
    ]
}

/// One tensor's data, each array padded in front by its own offset so that
/// the slices the kernel sees start at every alignment.
#[derive(Clone, Debug)]
struct Data<E = f32> {
    n: usize,
    off: [usize; 4],
    p: Vec<E>,
    g: Vec<E>,
    v: Vec<E>,
    u: Vec<E>,
}

fn data(max_len: usize) -> impl Strategy<Value = Data> {
    data_of(max_len, value, state_value)
}

fn data64(max_len: usize) -> impl Strategy<Value = Data<f64>> {
    data_of(max_len, value64, state_value64)
}

fn value_bf16() -> impl Strategy<Value = bf16> {
    value16(bf16::from_f32, bf16::from_bits)
}

fn value_f16() -> impl Strategy<Value = f16> {
    value16(f16::from_f32, f16::from_bits)
}

/// Data of lengths `0..=max_len` from the value strategies of one type.
fn data_of<E: Float, S: Strategy<Value = E> + 'static, T: Strategy<Value = E> + 'static>(
    max_len: usize,
    value: fn() -> S,
    state_value: fn() -> T,
) -> impl Strategy<Value = Data<E>> {
    (
        0..=max_len,
        [0usize..16, 0usize..16, 0usize..16, 0usize..16],
    )
        .prop_flat_map(move |(n, off)| {
            (
                Just(n),
                Just(off),
                prop::collection::vec(value(), n + off[0]),
                prop::collection::vec(value(), n + off[1]),
                prop::collection::vec(state_value(), n + off[2]),
                prop::collection::vec(state_value(), n + off[3]),
            )
                .prop_map(|(n, off, p, g, v, u)| Data { n, off, p, g, v, u })
        })
}

/// Runs one step of `d` with `exec`; returns (param, square_avg, acc_delta).
/// The step of `d` on every path this CPU has, in every numerics it
/// computes, against the scalar path's.
fn every_path_equals_scalar_on<E: Float>(
    h: &Hyperparams,
    d: &Data<E>,
) -> Result<(), TestCaseError> {
    let c = Coefficients::new(h).unwrap();
    for numerics in Numerics::supported() {
        let want = step_on(&scalar(numerics), &c, d);
        for (path, ds) in paths_here() {
            let got = step_on(&on(path, ds, numerics), &c, d);
            let tag = format!(
                "{path:?} {ds:?} {numerics:?} {} n={} off={:?}",
                E::DTYPE,
                d.n,
                d.off
            );
            assert_same(&format!("{tag} param"), &got.0, &want.0)?;
            assert_same(&format!("{tag} square_avg"), &got.1, &want.1)?;
            assert_same(&format!("{tag} acc_delta"), &got.2, &want.2)?;
        }
    }
    Ok(())
}

/// The square roots of `x` after `off` ones (so that every alignment is
/// met) on every path, in every numerics, against the scalar path's.
fn every_sqrt_equals_scalar_on<E: Float>(off: usize, mut x: Vec<E>) -> Result<(), TestCaseError> {
    x.splice(0..0, std::iter::repeat_n(E::ONE, off));
    for numerics in Numerics::supported() {
        let mut want = x.clone();
        sqrt(&scalar(numerics), &mut want[off..]).unwrap();
        for (path, ds) in paths_here() {
            let mut got = x.clone();
            sqrt(&on(path, ds, numerics), &mut got[off..]).unwrap();
            let tag = format!("{path:?} {ds:?} {numerics:?} {} sqrt", E::DTYPE);
            assert_same(&tag, &got, &want)?;
        }
    }
    Ok(())
}

fn step_on<E: Float>(exec: &Executor, c: &Coefficients, d: &Data<E>) -> (Vec<E>, Vec<E>, Vec<E>) {
    let mut d = d.clone();
    let [op, og, ov, ou] = d.off;
    let n = d.n;
    let mut jobs = [Job {
        coeffs: c,
        param: &mut d.p[op..op + n],
        grad: &d.g[og..og + n],
        square_avg: &mut d.v[ov..ov + n],
        acc_delta: &mut d.u[ou..ou + n],
    }];
    run(&mut jobs, exec).expect("path and numerics are supported here");
    (
        d.p[op..op + n].to_vec(),
        d.v[ov..ov + n].to_vec(),
        d.u[ou..ou + n].to_vec(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(256), ..ProptestConfig::default() })]

    /// Every path equals the scalar path on lengths 0..=1000 at every
    /// alignment, with every class of input, in every numerics.
    #[test]
    fn every_path_equals_scalar(h in hyper(), d in data(1000)) {
        every_path_equals_scalar_on(&h, &d)?;
    }

    /// In bfloat16 and float16 (both `foreach` values: `hyper` draws it),
    /// every path equals the scalar path likewise, in every numerics.
    #[test]
    fn every_path_equals_scalar_in_bf16(h in hyper(), d in data_of(300, value_bf16, value_bf16)) {
        every_path_equals_scalar_on(&h, &d)?;
    }

    #[test]
    fn every_path_equals_scalar_in_f16(h in hyper(), d in data_of(300, value_f16, value_f16)) {
        every_path_equals_scalar_on(&h, &d)?;
    }

    /// In float64, every path equals the scalar path likewise, in every
    /// numerics this CPU computes.
    #[test]
    fn every_path_equals_scalar_in_f64(h in hyper(), d in data64(1000)) {
        every_path_equals_scalar_on(&h, &d)?;
    }

    /// The float64 square roots alone, on raw bit patterns of every kind
    /// and on the ranges where the oneMKL recipes branch, at every length
    /// and offset.
    #[test]
    fn every_sqrt_equals_scalar_in_f64(
        off in 0usize..8,
        x in prop::collection::vec(prop_oneof![
            4 => any::<u64>(),
            1 => 0u64..0x0020_0000_0000_0000,                    // zero, subnormals, smallest normals
            1 => 0x0010_0000_0000_0000u64..0x06b0_0000_0000_0000, // Z0HA's scaled branch (x < ~2^-916)
            1 => 0x7fcf_ff00_0000_0000u64..0x7ff0_0000_0000_0000, // EXHA/L9HA's IEEE range from 2^1022
        ], 0..300),
    ) {
        every_sqrt_equals_scalar_on(off, x.into_iter().map(f64::from_bits).collect())?;
    }

    /// The square roots alone, on raw bit patterns of every kind and on the
    /// ranges where the oneMKL recipes branch, at every length and offset.
    #[test]
    fn every_sqrt_equals_scalar(
        off in 0usize..16,
        x in prop::collection::vec(prop_oneof![
            4 => any::<u32>(),
            1 => 0x7f7f_e000u32..0x7f80_0000,  // EXHA's IEEE range starts at 0x7f7ff000
            1 => 0u32..0x0100_0000,            // zero, subnormals, smallest normals
            1 => 0x0080_0000u32..0x1b00_0000,  // Z0HA's scaled branch (x < ~2^-78)
        ], 0..300),
    ) {
        every_sqrt_equals_scalar_on(off, x.into_iter().map(f32::from_bits).collect())?;
    }
}

/// The estimated square root over every one of the 2^32 f32 bit patterns
/// equals `vsqrtps` (the hardware path), NaN payloads apart: the
/// exhaustive check of the proof in `numerics.md`. A few seconds on an
/// AVX-512 machine; elsewhere (no estimate path) it says so and passes.
#[test]
fn estimated_sqrt_equals_vsqrtps_on_all_2_32_inputs() {
    let isas: Vec<Isa> = Isa::ALL
        .into_iter()
        .filter(|i| DivSqrt::EstimatedSqrt.runs_with(*i))
        .collect();
    if isas.is_empty() {
        eprintln!("no path here computes the estimated square root: nothing to check");
    }
    const CHUNK: usize = 1 << 22;
    let (mut got, mut want) = (vec![0f32; CHUNK], vec![0f32; CHUNK]);
    for isa in isas {
        let mut differ = 0u64;
        for c in 0..(1u64 << 32) / CHUNK as u64 {
            for (i, x) in want.iter_mut().enumerate() {
                *x = f32::from_bits((c as usize * CHUNK + i) as u32);
            }
            got.copy_from_slice(&want);
            for (ds, x) in [
                (DivSqrt::Hardware, &mut want),
                (DivSqrt::EstimatedSqrt, &mut got),
            ] {
                sqrt(&on(isa, ds, Numerics::Default), x).unwrap();
            }
            for i in 0..CHUNK {
                if !same(got[i], want[i]) {
                    if differ < 10 {
                        let x = (c as usize * CHUNK + i) as u32;
                        let (g, w) = (got[i].to_bits(), want[i].to_bits());
                        eprintln!("{isa:?} {x:#010x}: {g:#010x} vs {w:#010x}");
                    }
                    differ += 1;
                }
            }
        }
        assert_eq!(
            differ, 0,
            "{isa:?}: the estimated sqrt differs from vsqrtps on {differ} inputs"
        );
    }
}

/// Several steps of a list of tensors, on pools of 1 to 4 threads and with
/// grains from tiny (every tensor cut into many pieces) to the default: the
/// bits never change.
#[test]
fn thread_count_does_not_change_bits() {
    let sizes = [
        1usize, 0, 7, 16, 33, 1000, 5003, 65_536, 3, 100_003, 17, 40_000,
    ];
    let total: usize = sizes.iter().sum();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
    };
    let init: Vec<Vec<f32>> = sizes
        .iter()
        .map(|&n| (0..n).map(|_| next()).collect())
        .collect();
    let grads: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|_| {
            sizes
                .iter()
                .map(|&n| (0..n).map(|_| next()).collect())
                .collect()
        })
        .collect();
    let c = [
        Coefficients::new(&Hyperparams::default()).unwrap(),
        Coefficients::new(&Hyperparams {
            lr: 0.37,
            weight_decay: 0.1,
            maximize: true,
            ..Hyperparams::default()
        })
        .unwrap(),
    ];
    let go = |numerics: Numerics, threads: Threads, grain: usize| {
        let mut p = init.clone();
        let mut v: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
        let mut u = v.clone();
        for g in &grads {
            let mut jobs: Vec<Job> = p
                .iter_mut()
                .zip(g)
                .zip(v.iter_mut())
                .zip(u.iter_mut())
                .enumerate()
                .map(|(i, (((p, g), v), u))| Job {
                    coeffs: &c[i % 2],
                    param: p,
                    grad: g,
                    square_avg: v,
                    acc_delta: u,
                })
                .collect();
            let exec = Executor {
                numerics,
                threads: threads.clone(),
                grain,
                ..Executor::default()
            };
            run(&mut jobs, &exec).unwrap();
        }
        (p, v, u)
    };
    for numerics in Numerics::supported() {
        let want = go(numerics, Threads::Single, total);
        for t in 1..=4 {
            let pool = Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap(),
            );
            for grain in [16, 1000, adadelta::kernel::DEFAULT_GRAIN] {
                let got = go(numerics, Threads::Pool(pool.clone()), grain);
                assert!(
                    got == want,
                    "{numerics:?}: {t} threads, grain {grain} differ from one thread"
                );
            }
        }
        assert!(go(numerics, Threads::Rayon, 16) == want);
    }
}

/// `ADADELTA_KERNEL` (read once per process) forces the path: run this test
/// binary again under each value and check what it selected.
#[test]
fn env_var_forces_path() {
    if let Ok(expect) = std::env::var("ADADELTA_TEST_EXPECT_PATH") {
        // The child: report what was selected.
        let got = match Isa::selected() {
            Ok(p) => p.name().to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert!(
            got.starts_with(&expect),
            "ADADELTA_KERNEL={:?}: selected {got}, expected {expect}",
            std::env::var("ADADELTA_KERNEL")
        );
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cases: Vec<(String, String)> = Isa::ALL
        .into_iter()
        .map(|p| {
            let expect = if p.is_supported() {
                p.name().to_string()
            } else {
                "error".to_string()
            };
            (p.name().to_uppercase(), expect)
        })
        .collect();
    cases.push(("auto".into(), Isa::best().name().into()));
    cases.push(("".into(), Isa::best().name().into()));
    cases.push(("sse9".into(), "error".into()));
    for (value, expect) in cases {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "env_var_forces_path", "--test-threads=1"])
            .env("ADADELTA_KERNEL", &value)
            .env("ADADELTA_TEST_EXPECT_PATH", &expect)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ADADELTA_KERNEL={value:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A forced path the CPU lacks, and oneMKL kernels it cannot compute, are
/// errors that write nothing.
#[test]
fn unavailable_is_an_error_and_writes_nothing() {
    let c = Coefficients::new(&Hyperparams::default()).unwrap();
    let (mut p, mut v, mut u) = (vec![1.0f32; 5], vec![0.0f32; 5], vec![0.0f32; 5]);
    for path in Isa::ALL.into_iter().filter(|p| !p.is_supported()) {
        let mut jobs = [Job {
            coeffs: &c,
            param: &mut p,
            grad: &[1.0; 5],
            square_avg: &mut v,
            acc_delta: &mut u,
        }];
        let exec = Executor {
            isa: Some(path),
            ..Executor::default()
        };
        assert!(matches!(
            run(&mut jobs, &exec),
            Err(adadelta::Error::KernelUnavailable(_))
        ));
    }
    for k in LibtorchSqrt::ALL.into_iter().filter(|k| !k.is_supported()) {
        let mut jobs = [Job {
            coeffs: &c,
            param: &mut p,
            grad: &[1.0; 5],
            square_avg: &mut v,
            acc_delta: &mut u,
        }];
        assert!(matches!(
            run(&mut jobs, &Executor::with_numerics(Numerics::Libtorch(k))),
            Err(adadelta::Error::CannotReproduceLibtorch(_))
        ));
    }
    assert_eq!((p, v, u), (vec![1.0; 5], vec![0.0; 5], vec![0.0; 5]));
}

/// The detected oneMKL kernel on this machine (printed for the log), and
/// that a detected kernel is always one this CPU can compute.
#[test]
fn detection_is_consistent() {
    match LibtorchSqrt::detect() {
        Ok(k) => {
            eprintln!("libtorch sqrt here: {}", k.mkl_kernel());
            assert!(k.is_supported());
        }
        Err(e) => eprintln!("{e}"),
    }
}
