//! Replays every bfloat16 and float16 golden fixture (real
//! `torch.optim.Adadelta` on `torch.bfloat16`/`torch.float16` parameters,
//! `foreach=None` and `foreach=True`, one torch thread; see
//! `fixtures/MANIFEST.json`) through `adadelta::kernel`:
//!
//! * **ReproduceLibtorch, bit for bit, on every path**, where fast can
//!   reproduce libtorch and the fixture comes from ATen's AVX2 or AVX-512
//!   kernels (the 16-bit square root is not oneMKL's, so no probe is
//!   needed); PyTorch's scalar code on the last `len % 32` elements
//!   included. NaNs by class and quietness: torch's bfloat16 NaN bits depend
//!   on the tensor's length.
//! * **Default numerics, bit for bit, on every path** against the MPFR
//!   reference's `Half` arithmetic rounding every op once.
//! * The two `foreach` values give other numbers somewhere, as measured:
//!   `torch._foreach_mul_` rounds `rho` to the dtype.

use adadelta::kernel::Numerics;
use adadelta_difftest::accuracy::{first_difference_with, Compared, NanBits};
use adadelta_difftest::fixture::{Bf16Bits, Bits, F16Bits, Fixture};
use adadelta_difftest::implementations::{
    path_executor, paths_here, run_kernel, run_reference_half,
};
use adadelta_reference::{Format, Rounding};

fn fixtures<B: Bits>() -> Vec<Fixture<B>> {
    let fx = Fixture::<B>::load_all().expect("fixtures/MANIFEST.json and its 16-bit fixtures load");
    assert!(
        fx.len() >= 10,
        "expected at least 10 {} fixtures, found {}",
        B::DTYPE,
        fx.len()
    );
    fx
}

fn provenance<B: Bits>() {
    for f in fixtures::<B>() {
        f.check_provenance().unwrap();
    }
}

#[test]
fn bfloat16_and_float16_fixtures_come_from_the_pinned_pytorch_with_both_foreach_values() {
    provenance::<Bf16Bits>();
    provenance::<F16Bits>();
}

/// Every scenario has its `foreach=True` twin, and some twin holds other
/// numbers than its for-loop fixture.
fn foreach_differs<B: Bits>() {
    let all = fixtures::<B>();
    let mut differ = 0;
    for f in all.iter().filter(|f| f.foreach.is_none()) {
        let twin = all
            .iter()
            .find(|o| o.name == f.name && o.foreach == Some(true))
            .unwrap_or_else(|| panic!("{}: no foreach=True twin", f.name));
        differ += usize::from(f.first_numeric_difference(twin).is_some());
    }
    assert!(
        differ > 0,
        "{}: foreach=True never differs from the for-loop",
        B::DTYPE
    );
}

#[test]
fn foreach_and_for_loop_fixtures_differ_in_16_bit_dtypes() {
    foreach_differs::<Bf16Bits>();
    foreach_differs::<F16Bits>();
}

/// Reproduce-libtorch where fast can reproduce the generator's kernels.
fn reproduces<B: Bits>(fx: &Fixture<B>) -> Option<Numerics> {
    let fused = ["AVX2", "AVX512"].contains(&fx.generated_by.cpu_capability.as_str());
    match Numerics::ReproduceLibtorch.libtorch_sqrt() {
        Ok(_) if fused => Some(Numerics::ReproduceLibtorch),
        other => {
            eprintln!(
                "NOTE: {} fixture {:?} (ATen capability {}): not replayed bit for bit here ({:?})",
                fx.dtype,
                fx.name,
                fx.generated_by.cpu_capability,
                other.err()
            );
            None
        }
    }
}

fn replay<B: Bits>()
where
    B::Float: Compared + Format,
{
    for fx in fixtures::<B>() {
        let numerics = reproduces(&fx);
        for (case, idx) in fx.group_cases() {
            let torch = fx.trajectory(&idx);
            let once = run_reference_half(&case, Rounding::Once, 1);
            for isa in paths_here() {
                let ctx = format!("{} foreach={:?} {isa:?}", case.name, fx.foreach);
                if let Some(n) = numerics {
                    let got = run_kernel(&case, &path_executor(n, isa));
                    if let Some(d) =
                        first_difference_with(&case, &got, &torch, NanBits::QuietAnyPayload)
                    {
                        panic!("{ctx}: reproduce-libtorch vs PyTorch: {d}");
                    }
                }
                let got = run_kernel(&case, &path_executor(Numerics::Default, isa));
                if let Some(d) = first_difference_with(&case, &got, &once, NanBits::QuietAnyPayload)
                {
                    panic!("{ctx}: default vs reference Once: {d}");
                }
            }
        }
    }
}

#[test]
fn every_bfloat16_fixture_replays_bit_for_bit_on_every_path() {
    replay::<Bf16Bits>();
}

#[test]
fn every_float16_fixture_replays_bit_for_bit_on_every_path() {
    replay::<F16Bits>();
}
