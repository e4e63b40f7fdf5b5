//! Replays every float64 golden fixture (real `torch.optim.Adadelta` on
//! `torch.float64` parameters, `foreach=None` and `foreach=True`, see
//! `fixtures/MANIFEST.json`) through `adadelta::kernel` on `f64` slices.
//!
//! * **ReproduceLibtorch, bit for bit, on every path**, where this machine's
//!   libtorch gives the fixtures' float64 sqrt probe bits (the same oneMKL
//!   recipe as the generating machine). oneMKL's float64 `vdSqrt` is not
//!   correctly rounded, and its recipe depends on the CPU
//!   (`fast/docs/numerics.md`); where this machine's differs, the test says
//!   so on stderr and the bitwise replay is left to a machine of the
//!   generator's kind (the kernel's recipes are compared with this
//!   machine's libtorch in `kernel_libtorch_f64.rs`).
//! * **Default numerics, bit for bit, on every path** against the MPFR
//!   reference's binary64 emulation, on every machine.
//! * The two `foreach` values hold the same numbers, as measured for
//!   float32 and float64 (they differ for float16, bfloat16 and complex).
//!
//! NaNs from fast are compared by class and quietness only (their sign and
//! payload are not determined: `fast/docs/numerics.md`, "NaN bits"); every
//! other bit must be equal, signed zeros and infinities included.

use adadelta::kernel::{self, Executor, Numerics};
use adadelta_difftest::accuracy::{first_difference_with, NanBits};
use adadelta_difftest::fixture::{check_foreach_twins, Fixture};
use adadelta_difftest::implementations::{path_executor, paths_here, run_kernel, run_reference};
use adadelta_reference::MulAdd;

fn fixtures() -> Vec<Fixture<u64>> {
    let fx =
        Fixture::<u64>::load_all().expect("fixtures/MANIFEST.json and its float64 fixtures load");
    assert!(
        fx.len() >= 10,
        "expected at least 10 float64 fixtures, found {}",
        fx.len()
    );
    fx
}

/// The probe inputs of a fixture's float64 sqrt flavour, and the number of
/// them on which `sqrt` gives other bits than the generating libtorch.
fn probe_differences(fx: &Fixture<u64>, sqrt: impl FnOnce(&mut [f64])) -> usize {
    let sq = &fx.generated_by.sqrt_flavour_float64;
    let mut x: Vec<f64> = sq.probe_inputs.iter().map(|&b| f64::from_bits(b)).collect();
    sqrt(&mut x);
    x.iter()
        .zip(&sq.probe_outputs)
        .filter(|(y, &b)| y.to_bits() != b)
        .count()
}

/// `ReproduceLibtorch` where this machine's libtorch gives the fixture's
/// float64 sqrt probe bits and the kernel can compute it; `None`, with a
/// note, elsewhere.
fn reproduces_generator(fx: &Fixture<u64>) -> Option<Numerics> {
    let torch = probe_differences(fx, |x| {
        let y = Vec::<f64>::try_from(tch::Tensor::from_slice(x).sqrt()).expect("f64 tensor");
        x.copy_from_slice(&y);
    });
    let why = if torch > 0 {
        format!("this machine's libtorch differs on {torch} probe inputs")
    } else {
        let mut ours = Err(String::new());
        let n = probe_differences(fx, |x| {
            ours = kernel::sqrt(&Executor::with_numerics(Numerics::ReproduceLibtorch), x)
                .map_err(|e| e.to_string())
        });
        match ours {
            // This machine's libtorch gives the probe's bits, so the detected
            // recipe must too.
            Ok(()) => {
                assert_eq!(
                    n, 0,
                    "{}: ReproduceLibtorch's float64 sqrt differs from libtorch's on the probe",
                    fx.name
                );
                return Some(Numerics::ReproduceLibtorch);
            }
            Err(e) => format!("fast cannot reproduce this machine's libtorch ({e})"),
        }
    };
    eprintln!(
        "NOTE: float64 fixture {:?} was generated where libtorch's float64 sqrt is {:?}; {why}, \
         so its ReproduceLibtorch replay is not bit for bit here (default numerics still are)",
        fx.name, fx.generated_by.sqrt_flavour_float64.name
    );
    None
}

#[test]
fn float64_fixtures_come_from_the_pinned_pytorch_with_both_foreach_values() {
    for f in fixtures() {
        f.check_provenance().unwrap();
    }
}

/// PyTorch's `foreach=True` (`_multi_tensor_adadelta`) and its default
/// for-loop give the same bits in float64: inputs, parameters, state and
/// step counters.
#[test]
fn foreach_and_for_loop_fixtures_hold_the_same_float64_numbers() {
    check_foreach_twins(&fixtures()).unwrap();
}

#[test]
fn reproduce_libtorch_replays_every_float64_fixture_bit_for_bit_on_every_path() {
    tch::set_num_threads(1);
    for fx in fixtures() {
        let Some(numerics) = reproduces_generator(&fx) else {
            continue;
        };
        for (case, idx) in fx.group_cases() {
            let expected = fx.trajectory(&idx);
            for isa in paths_here() {
                let got = run_kernel(&case, &path_executor(numerics, isa));
                let d = first_difference_with(&case, &got, &expected, NanBits::QuietAnyPayload);
                assert!(
                    d.is_none(),
                    "{} foreach={:?}, {isa:?}: {}",
                    case.name,
                    fx.foreach,
                    d.unwrap_or_default()
                );
                let steps =
                    |t: &adadelta_difftest::case::Trajectory<f64>| -> Vec<Vec<Option<u32>>> {
                        t.iter()
                            .map(|s| s.step.iter().map(|c| c.map(f32::to_bits)).collect())
                            .collect()
                    };
                assert_eq!(
                    steps(&got),
                    steps(&expected),
                    "{}: float32 step counters",
                    case.name
                );
            }
        }
    }
}

#[test]
fn default_numerics_equal_the_binary64_reference_on_every_float64_fixture_and_path() {
    for fx in fixtures() {
        for (case, _) in fx.group_cases() {
            let want = run_reference(&case, MulAdd::Fused);
            for isa in paths_here() {
                let got = run_kernel(&case, &path_executor(Numerics::Default, isa));
                let d = first_difference_with(&case, &got, &want, NanBits::QuietAnyPayload);
                assert!(
                    d.is_none(),
                    "{} foreach={:?}, {isa:?}: {}",
                    case.name,
                    fx.foreach,
                    d.unwrap_or_default()
                );
            }
        }
    }
}
