//! bfloat16 and float16: the production kernel against the MPFR reference's
//! 16-bit arithmetic (`adadelta_reference::Half`), bit for bit, on every
//! path, both `foreach` values, over several steps with absent gradients
//! and values of every class (subnormals, the largest values, ±0, ±inf,
//! NaN, raw bit patterns):
//!
//! * the default numerics against `Rounding::Once`, every op's exact result
//!   rounded once to the dtype;
//! * the reproduce-libtorch numerics against `Rounding::Opmath`, every op
//!   computed in binary32 and rounded to the dtype, as PyTorch's kernels do.
//!
//! fast's NaNs are compared by class and quietness only, as for float32 and
//! float64 (its NaN sign and payload are not determined: `fast/docs/numerics.md`,
//! "NaN bits"); every other bit, signed zeros included, must be equal. Case
//! counts follow `PROPTEST_CASES` when set.

use adadelta::half::{bf16, f16};
use adadelta::kernel::{Element, Executor, Isa, Numerics};
use adadelta_difftest::accuracy::{first_difference_with, Compared, NanBits};
use adadelta_difftest::case::Case;
use adadelta_difftest::implementations::{
    path_executor, paths_here, run_kernel, run_reference_half,
};
use adadelta_difftest::strategies::{cases_or, hyper};
use adadelta_reference::{Format, Rounding};
use proptest::prelude::*;

/// A 16-bit dtype under test.
trait Half: Element + Format + Compared {
    /// The value of `x` rounded to the dtype.
    fn of(x: f32) -> Self;
}
impl Half for bf16 {
    fn of(x: f32) -> bf16 {
        bf16::from_f32(x)
    }
}
impl Half for f16 {
    fn of(x: f32) -> f16 {
        f16::from_f32(x)
    }
}

/// Values of every class of the dtype `H`.
fn value<H: Half>() -> impl Strategy<Value = H> {
    let bits = |b: u64| <H as Format>::from_bits(b);
    let frac = (1u64 << (H::PREC - 1)) - 1;
    let sign = 1u64 << 15;
    let max = H::INF_BITS - 1;
    prop_oneof![
        8 => (-4.0f32..4.0).prop_map(H::of),
        1 => Just(bits(0)),
        1 => Just(bits(sign)),
        1 => (1..=frac, any::<bool>()).prop_map(move |(b, s)| bits(b | if s { sign } else { 0 })),
        1 => (max - 64..=max, any::<bool>()).prop_map(move |(b, s)| bits(b | if s { sign } else { 0 })),
        1 => prop_oneof![Just(bits(H::INF_BITS)), Just(bits(H::INF_BITS | sign)), Just(bits(H::INF_BITS | H::QUIET_BIT))],
        2 => any::<u16>().prop_map(move |b| bits(u64::from(b))),
    ]
}

/// One case in the dtype `H`: the initial parameters (1 to 3 tensors, of
/// `size` elements each), and each step's gradients (`None`: absent), with
/// `foreach` either way.
fn case<H: Half>(size: impl Strategy<Value = usize>) -> impl Strategy<Value = Case<H>> {
    (
        hyper(),
        any::<bool>(),
        prop::collection::vec(size, 1..=3),
        1usize..=5,
    )
        .prop_flat_map(|(hyper, foreach, sizes, steps)| {
            let params: Vec<_> = sizes
                .iter()
                .map(|&n| prop::collection::vec(value::<H>(), n))
                .collect();
            let step = sizes
                .iter()
                .map(|&n| prop::option::weighted(0.85, prop::collection::vec(value::<H>(), n)))
                .collect::<Vec<_>>();
            let hyper = adadelta_difftest::case::Hyper { foreach, ..hyper };
            (Just(hyper), params, prop::collection::vec(step, steps))
        })
        .prop_map(|(hyper, params, grads)| Case {
            name: format!("{} proptest", H::DTYPE),
            hyper,
            params,
            grads,
        })
}

/// The executor of one path and numerics reproducing a PyTorch of
/// `torch_threads` intra-op threads.
fn executor(numerics: Numerics, isa: Isa, torch_threads: usize) -> Executor {
    Executor {
        libtorch_threads: Some(torch_threads),
        ..path_executor(numerics, isa)
    }
}

/// Every path in `numerics` against the reference rounding as `rounding`
/// (PyTorch's scalar code where it runs with one intra-op thread).
fn every_path_equals_reference<H: Half>(
    c: &Case<H>,
    numerics: Numerics,
    rounding: Rounding,
) -> Result<(), TestCaseError> {
    let want = run_reference_half(c, rounding, 1);
    for isa in paths_here() {
        let got = run_kernel(c, &executor(numerics, isa, 1));
        if let Some(d) = first_difference_with(c, &got, &want, NanBits::QuietAnyPayload) {
            return Err(TestCaseError::fail(format!(
                "{isa:?} {numerics:?} foreach={}: fast vs reference {rounding:?}: {d}",
                c.hyper.foreach
            )));
        }
    }
    Ok(())
}

/// A reproduce-libtorch numerics this CPU computes (the 16-bit kernels
/// take no oneMKL square root, so any will do), if any.
fn reproduce() -> Option<Numerics> {
    Numerics::supported().get(1).copied()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(256), ..ProptestConfig::default() })]

    #[test]
    fn fast_bf16_default_equals_every_op_rounded_once(c in case::<bf16>(0usize..=40)) {
        every_path_equals_reference(&c, Numerics::Default, Rounding::Once)?;
    }

    #[test]
    fn fast_f16_default_equals_every_op_rounded_once(c in case::<f16>(0usize..=40)) {
        every_path_equals_reference(&c, Numerics::Default, Rounding::Once)?;
    }

    #[test]
    fn fast_bf16_reproduce_libtorch_equals_opmath_emulation(c in case::<bf16>(0usize..=40)) {
        if let Some(n) = reproduce() {
            every_path_equals_reference(&c, n, Rounding::Opmath)?;
        }
    }

    #[test]
    fn fast_f16_reproduce_libtorch_equals_opmath_emulation(c in case::<f16>(0usize..=40)) {
        if let Some(n) = reproduce() {
            every_path_equals_reference(&c, n, Rounding::Opmath)?;
        }
    }
}

/// fast's run of `c` in both numerics (reproduce-libtorch where this CPU
/// computes it; the reference equals each bit for bit, above) within the
/// 16-bit error bound of its rounding, over values of every class.
fn within_the_bound<H: Half + adadelta_difftest::dtype::Floating>(
    c: &Case<H>,
) -> Result<(), TestCaseError> {
    let isa = paths_here()[0];
    let runs = std::iter::once((Numerics::Default, Rounding::Once))
        .chain(reproduce().map(|n| (n, Rounding::Opmath)));
    for (numerics, rounding) in runs {
        let traj = run_kernel(c, &executor(numerics, isa, 1));
        let acc = adadelta_difftest::accuracy::per_step_half(c, &traj, rounding, 1);
        if acc.violation_count > 0 {
            return Err(TestCaseError::fail(format!(
                "{numerics:?} outside the {rounding:?} bound, {:?}: {:?}",
                c.hyper,
                acc.violations.first()
            )));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(64), ..ProptestConfig::default() })]

    #[test]
    fn bf16_steps_are_within_the_bound_of_their_rounding(c in case::<bf16>(0usize..=40)) {
        within_the_bound(&c)?;
    }

    #[test]
    fn f16_steps_are_within_the_bound_of_their_rounding(c in case::<f16>(0usize..=40)) {
        within_the_bound(&c)?;
    }
}

/// `n` cases of `H` drawn from [`case`] with a fixed seed, half of them on
/// the `foreach` path, with tensors of up to 100 elements, so that many end
/// in elements PyTorch computes in scalar code.
fn sample<H: Half>(n: usize) -> Vec<Case<H>> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = case::<H>(prop_oneof![0usize..=100, Just(32), Just(64)]);
    (0..n)
        .map(|i| {
            let mut c = strategy.new_tree(&mut runner).expect("a case").current();
            c.hyper.foreach = i % 2 == 1;
            c
        })
        .collect()
}

/// Real `torch.optim.Adadelta` (torch 2.13 in the venv, one intra-op
/// thread) against the reproduce-libtorch numerics on every path, and
/// against the reference's opmath emulation (scalar code on the last
/// `len % 32` elements), bit for bit; NaNs by class and quietness (torch's
/// bfloat16 NaN bits depend on the tensor's length: `0x7fc0` from its
/// scalar conversion, `0xffff` from its AVX-512 one). Also checks that the
/// default numerics differ from PyTorch somewhere in the sample, so that the
/// comparison tells the two roundings apart.
fn pytorch_equals_reproduce_libtorch<H: Half>() {
    let Some(numerics) = reproduce() else {
        println!("no reproduce-libtorch numerics on this CPU: skipped");
        return;
    };
    let cases = sample::<H>(200);
    let torch = adadelta_difftest::pytorch::run_pytorch_with_threads(&cases, Some(1))
        .expect("PyTorch runs");
    let mut default_differs = false;
    for (c, want) in cases.iter().zip(&torch) {
        let opmath = run_reference_half(c, Rounding::Opmath, 1);
        if let Some(d) = first_difference_with(c, &opmath, want, NanBits::QuietAnyPayload) {
            panic!(
                "reference Opmath vs PyTorch, foreach={}: {d}",
                c.hyper.foreach
            );
        }
        for isa in paths_here() {
            let got = run_kernel(c, &executor(numerics, isa, 1));
            if let Some(d) = first_difference_with(c, &got, want, NanBits::QuietAnyPayload) {
                panic!(
                    "{isa:?} reproduce-libtorch vs PyTorch, foreach={}: {d}",
                    c.hyper.foreach
                );
            }
        }
        let default = run_kernel(c, &executor(Numerics::Default, paths_here()[0], 1));
        default_differs |=
            first_difference_with(c, &default, want, NanBits::QuietAnyPayload).is_some();
    }
    assert!(
        default_differs,
        "the default numerics equal PyTorch's on the whole sample"
    );
}

#[test]
fn pytorch_bf16_equals_reproduce_libtorch_on_both_foreach_paths() {
    pytorch_equals_reproduce_libtorch::<bf16>();
}

#[test]
fn pytorch_f16_equals_reproduce_libtorch_on_both_foreach_paths() {
    pytorch_equals_reproduce_libtorch::<f16>();
}

/// Tensors above ATen's grain (32768 elements), which PyTorch splits into
/// one chunk per intra-op thread, each with its own scalar tail: PyTorch
/// with 2 and 3 threads against reproduce-libtorch told the same count,
/// with weight decay (whose `add(alpha=)` the tails round differently) and
/// both `foreach` values, and against a count it was not told, which must
/// differ (else the test could not fail).
fn pytorch_threads_place_the_scalar_tails<H: Half>() {
    let Some(numerics) = reproduce() else {
        println!("no reproduce-libtorch numerics on this CPU: skipped");
        return;
    };
    let mut rng = adadelta_difftest::suite::Rng::new(7);
    let mut values = |n: usize| -> Vec<H> {
        (0..n)
            .map(|_| H::of((rng.unit() as f32 - 0.5) * 8.0))
            .collect()
    };
    let case = |foreach: bool, values: &mut dyn FnMut(usize) -> Vec<H>| Case {
        name: format!("{} large", H::DTYPE),
        hyper: adadelta_difftest::case::Hyper {
            lr: 0.7,
            weight_decay: 0.2334,
            foreach,
            ..Default::default()
        },
        params: vec![values(100_003), values(65_537)],
        grads: (0..2)
            .map(|_| vec![Some(values(100_003)), Some(values(65_537))])
            .collect(),
    };
    let cases = [case(false, &mut values), case(true, &mut values)];
    for threads in [2usize, 3] {
        let torch =
            adadelta_difftest::pytorch::run_pytorch_with_threads(&cases, Some(threads as u32))
                .expect("PyTorch runs");
        for (c, want) in cases.iter().zip(&torch) {
            let got = run_kernel(c, &executor(numerics, Isa::selected().unwrap(), threads));
            if let Some(d) = first_difference_with(c, &got, want, NanBits::QuietAnyPayload) {
                panic!("{threads} threads, foreach={}: {d}", c.hyper.foreach);
            }
            let other = run_kernel(c, &executor(numerics, Isa::selected().unwrap(), 1));
            assert!(
                first_difference_with(c, &other, want, NanBits::QuietAnyPayload).is_some(),
                "told 1 thread, reproduce-libtorch still equals PyTorch with {threads}"
            );
        }
    }
}

#[test]
fn pytorch_bf16_threads_place_the_scalar_tails() {
    pytorch_threads_place_the_scalar_tails::<bf16>();
}

#[test]
fn pytorch_f16_threads_place_the_scalar_tails() {
    pytorch_threads_place_the_scalar_tails::<f16>();
}
