//! The differential report: runs a suite through every implementation and
//! measures what the workspace promises. The `report` binary prints it; tests
//! snapshot its machine-independent part.
//!
//! It has a section per parameter dtype, float32, float64, bfloat16 and
//! float16: the same cases, each run in that dtype by every implementation
//! and measured in ULPs of its format. Promises, in each dtype (the report
//! fails when one does not hold):
//! 1. each implementation with a `promised_bit_identical_to`
//!    ([`Implementation`], [`HalfImplementation`]) equals that
//!    implementation bit for bit (float32, float64: fast default = the
//!    reference emulating the format, fast reproduce-libtorch = libtorch;
//!    bfloat16, float16: fast default = the reference rounding every op
//!    once, fast reproduce-libtorch = the reference rounding as PyTorch
//!    does, real PyTorch with one thread = fast reproduce-libtorch);
//! 2. in float32 and float64, libtorch through tch equals real
//!    `torch.optim.Adadelta` bit for bit (when PyTorch is run);
//! 3. every implementation's per-step error is within the bound of
//!    `fast/docs/numerics.md` for its format (PyTorch's too in the 16-bit
//!    sections), and parameters without a gradient never change;
//! 4. in float32 only, the reference's NaN signs and payloads equal
//!    libtorch's (the float32 NaN rules are the ones measured).

use crate::accuracy::{self, Accuracy};
use crate::case::{Case, Trajectory};
use crate::dtype::{Dtype, Floating};
use crate::implementations::{self, HalfImplementation, Implementation};
use crate::pytorch::{self, TorchInfo};
use crate::suite::Suites;
use adadelta::kernel::Element;
use adadelta_reference::rug::Float;
use adadelta_reference::{ulp_error_in, Adadelta, HighPrecision};
use serde::Serialize;
use std::time::Instant;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Also run real `torch.optim.Adadelta` in the venv's Python.
    pub run_pytorch: bool,
    /// Print progress on stderr.
    pub progress: bool,
}

/// One implementation's figures, for parameters of one dtype.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The parameters' dtype: `float32`, `float64`, `bfloat16`, `float16`.
    pub dtype: String,
    /// Implementation name.
    pub implementation: String,
    /// Whether its results are the same on every machine (no libtorch or
    /// MKL inside): [`Implementation::machine_independent`].
    pub machine_independent: bool,
    /// Largest per-step error of the parameters, ULPs of the dtype's format.
    pub max_ulp_param: f64,
    /// Largest per-step error of `square_avg`, ULPs.
    pub max_ulp_square_avg: f64,
    /// Largest per-step error of `acc_delta`, ULPs.
    pub max_ulp_acc_delta: f64,
    /// Mean per-step error over all outputs, ULPs.
    pub mean_ulp: f64,
    /// Finite outputs compared.
    pub compared: u64,
    /// Outputs outside the bound (0 when the bound holds).
    pub violations: u64,
    /// Largest error / bound ratio.
    pub max_bound_ratio: f64,
    /// The element attaining `max_bound_ratio`, described.
    pub tightest: Option<String>,
    /// Share of elements (params and state after every step) bit-identical
    /// to the section's [`Section::baseline`]: libtorch in float32 and
    /// float64, the reference rounding as PyTorch does in bfloat16 and
    /// float16.
    pub identical_to_libtorch: f64,
    /// Wall time of the step computations over the suite (no snapshots, one
    /// thread) divided by the element-steps taken (indicative; `cargo bench`
    /// is the measurement of speed); `None` where not timed (PyTorch).
    pub ns_per_element_step: Option<f64>,
    /// Multi-step drift: median over elements of the parameters' ULP error
    /// after each step, against a trajectory kept entirely in high precision.
    pub drift_median_ulp_by_step: Vec<f64>,
    /// Largest drift of the parameters after the last step, ULPs.
    pub drift_final_max_ulp: f64,
}

/// One promise and whether it held.
#[derive(Clone, Debug, Serialize)]
pub struct Promise {
    /// The dtype of the parameters it is about.
    pub dtype: String,
    /// What is promised.
    pub promise: String,
    /// Whether it held.
    pub held: bool,
    /// Figures or the first counterexample.
    pub detail: String,
}

/// The figures of one dtype's suite.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    /// The parameters' dtype as torch names it: `float32`, `float64`,
    /// `bfloat16`, `float16`.
    pub dtype: String,
    /// Its format, in whose ULPs the errors are: `binary32`, `binary64`,
    /// `bfloat16`, `binary16`.
    pub format: String,
    /// The implementation the rows' [`Row::identical_to_libtorch`] compare
    /// with: `libtorch (tch)`, or in the 16-bit sections the reference
    /// rounding as PyTorch does.
    pub baseline: String,
    /// Cases in the suite.
    pub cases: usize,
    /// Sum over cases of elements × steps.
    pub element_steps: usize,
    /// One row per implementation.
    pub rows: Vec<Row>,
    /// Share of elements where real `torch.optim.Adadelta` equals libtorch
    /// (tch), if run (float32 and float64; in the 16-bit sections PyTorch is
    /// a row).
    pub pytorch_identical_to_libtorch: Option<f64>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The PyTorch installation, or why it could not be asked.
    pub torch: Result<TorchInfo, String>,
    /// One section per dtype with cases, float32 first.
    pub sections: Vec<Section>,
    /// The promises, of every section.
    pub promises: Vec<Promise>,
}

impl Report {
    /// Whether every promise held.
    pub fn all_held(&self) -> bool {
        self.promises.iter().all(|p| p.held)
    }
}

fn progress(opts: &Options, msg: std::fmt::Arguments) {
    if opts.progress {
        crate::cli::eprint(&format!("[report] {msg}\n"));
    }
}

/// Bit-identical elements and elements in all, over every case, NaNs
/// compared by `nan`.
fn identical<T: Floating>(
    a: &[Trajectory<T>],
    b: &[Trajectory<T>],
    nan: accuracy::NanBits,
) -> (u64, u64) {
    a.iter()
        .zip(b)
        .map(|(x, y)| accuracy::bit_identical_with(x, y, nan))
        .fold((0, 0), |(e, n), (x, y)| (e + x, n + y))
}

/// The parameters after every step of a trajectory kept entirely at
/// [`accuracy::PRECISION`] bits.
fn high_precision_params<T: Floating>(case: &Case<T>) -> Vec<Vec<Vec<Float>>> {
    let hp = HighPrecision::new(accuracy::PRECISION);
    let exact =
        |v: &[T]| -> Vec<Float> { v.iter().map(|&x| accuracy::high_precision(x)).collect() };
    let params = case.params.iter().map(|p| exact(p)).collect();
    let mut opt = Adadelta::new(hp, case.hyper.to_reference(), params);
    case.grads
        .iter()
        .map(|grads| {
            let g: Vec<Option<Vec<Float>>> =
                grads.iter().map(|g| g.as_deref().map(exact)).collect();
            opt.step(&g);
            opt.params().to_vec()
        })
        .collect()
}

/// Drift per step: the median over finite elements of every case of the
/// parameters' ULP error after that step (the median, because elements whose
/// exact value nearly cancels have unbounded ULP errors and would swamp a
/// mean), and the largest drift after each case's last step.
fn drift<T: Floating>(
    cases: &[Case<T>],
    trajs: &[Trajectory<T>],
    hp: &[Vec<Vec<Vec<Float>>>],
) -> (Vec<f64>, f64) {
    let steps = cases.iter().map(|c| c.grads.len()).max().unwrap_or(0);
    let mut errs: Vec<Vec<f64>> = vec![Vec::new(); steps];
    let mut final_max: f64 = 0.0;
    for ((case, traj), hp) in cases.iter().zip(trajs).zip(hp) {
        for (t, (snap, exact)) in traj.iter().zip(hp).enumerate() {
            for (x, e) in snap.params.iter().flatten().zip(exact.iter().flatten()) {
                if !x.is_finite() || !e.is_finite() {
                    continue;
                }
                let u = ulp_error_in(*x, e);
                errs[t].push(u);
                if t + 1 == case.grads.len() {
                    final_max = final_max.max(u);
                }
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        if v.is_empty() {
            return 0.0;
        }
        let mid = v.len() / 2;
        *v.select_nth_unstable_by(mid, f64::total_cmp).1
    };
    (errs.iter_mut().map(median).collect(), final_max)
}

/// Runs the float32, float64, bfloat16 and float16 suites through every
/// implementation and measures them, a [`Section`] for each suite with
/// cases.
pub fn run(suites: &Suites, opts: &Options) -> Report {
    let torch = pytorch::torch_info();
    let mut promises = Vec::new();
    let mut sections = Vec::new();
    if !suites.float32.is_empty() {
        let (section, trajs) = section(&suites.float32, opts, &mut promises);
        sections.push(section);
        promises.push(nan_bits_promise(&trajs));
    }
    if !suites.float64.is_empty() {
        sections.push(section(&suites.float64, opts, &mut promises).0);
    }
    if !suites.bfloat16.is_empty() {
        sections.push(half_section(&suites.bfloat16, opts, &mut promises));
    }
    if !suites.float16.is_empty() {
        sections.push(half_section(&suites.float16, opts, &mut promises));
    }
    Report {
        torch,
        sections,
        promises,
    }
}

/// The position of `imp` in [`Implementation::ALL`].
fn index(imp: Implementation) -> usize {
    Implementation::ALL
        .iter()
        .position(|&i| i == imp)
        .expect("listed")
}

/// The reference's NaN bits against libtorch's, in float32 (`trajs` per
/// implementation of [`Implementation::ALL`], per case): the one dtype
/// whose PyTorch NaN rules are measured and modelled
/// ([`accuracy::reference_vs_pytorch_nan_rule`]).
fn nan_bits_promise(trajs: &[Vec<Trajectory<f32>>]) -> Promise {
    // The reference models NaN sign and payload; libtorch equals PyTorch bit
    // for bit (a promise of its own), so this holds the reference to
    // PyTorch's NaNs.
    let (nans, differ) = trajs[index(Implementation::Reference)]
        .iter()
        .zip(&trajs[index(Implementation::Libtorch)])
        .map(|(r, t)| accuracy::nan_bits_differences(r, t))
        .fold((0, 0), |(n, d), (x, y)| (n + x, d + y));
    Promise {
        dtype: <f32 as Element>::DTYPE.into(),
        promise: "NaN bits: reference binary32 = libtorch (tch), sign and payload".into(),
        held: differ == 0,
        detail: if nans == 0 {
            "no element is NaN in this suite (difftest/tests/nan_bits.rs makes NaNs)".into()
        } else {
            format!(
                "{} of {nans} elements NaN in either identical (NanBits::Exact; PyTorch's \
                 path-dependent mul tail by NaN class)",
                nans - differ
            )
        },
    }
}

/// Element-steps of a suite (elements × steps), and the elements that
/// actually step (with a gradient), for ns/element.
fn sizes<T>(cases: &[Case<T>]) -> (usize, usize) {
    let element_steps = cases
        .iter()
        .map(|c| c.params.iter().map(Vec::len).sum::<usize>() * c.grads.len())
        .sum();
    let stepped = cases
        .iter()
        .flat_map(|c| {
            c.grads
                .iter()
                .flat_map(|row| row.iter().flatten().map(Vec::len))
        })
        .sum();
    (element_steps, stepped)
}

/// The per-step accuracy of each row's trajectories (`trajs[row][case]`)
/// held to the bound `bounds[row]`, measured by `measure`, over every case.
/// A case whose trajectory is bit for bit (NaN bits included) that of an
/// earlier row held to the same bound is not measured again: the figures
/// are a function of the case, the trajectory and the bound.
fn accuracies<T: Floating, B: PartialEq>(
    cases: &[Case<T>],
    trajs: &[&[Trajectory<T>]],
    bounds: &[B],
    measure: impl Fn(&Case<T>, &Trajectory<T>, &B) -> Accuracy<T>,
) -> Vec<Accuracy<T>> {
    let mut per_case: Vec<Vec<Accuracy<T>>> = Vec::new();
    for (k, rows) in trajs.iter().enumerate() {
        let mut mine = Vec::new();
        for (i, (case, traj)) in cases.iter().zip(rows.iter()).enumerate() {
            let same = (0..k).find(|&j| {
                bounds[j] == bounds[k] && {
                    let (e, n) = accuracy::bit_identical(&trajs[j][i], traj);
                    e == n
                }
            });
            mine.push(match same {
                Some(j) => per_case[j][i].clone(),
                None => measure(case, traj, &bounds[k]),
            });
        }
        per_case.push(mine);
    }
    per_case
        .into_iter()
        .map(|accs| {
            let mut acc = Accuracy::default();
            for a in &accs {
                acc.merge(a);
            }
            acc
        })
        .collect()
}

/// The promise that `name`'s per-step error is within its bound.
fn within_bound_promise<T: Floating>(dtype: &str, name: &str, acc: &Accuracy<T>) -> Promise {
    Promise {
        dtype: dtype.into(),
        promise: format!("{name}: per-step error within the bound of fast/docs/numerics.md"),
        held: acc.violation_count == 0,
        detail: match acc.violations.first() {
            None => format!(
                "{} outputs compared, largest error/bound {:.3}",
                acc.compared, acc.max_bound_ratio
            ),
            Some(v) => format!("{} violations, first: {v:?}", acc.violation_count),
        },
    }
}

/// The promise `what`: trajectories `a` and `b` of every case bit for bit
/// the same, NaNs compared by `nan`.
fn identity_promise<T: Floating>(
    dtype: &str,
    what: String,
    cases: &[Case<T>],
    a: &[Trajectory<T>],
    b: &[Trajectory<T>],
    nan: accuracy::NanBits,
) -> Promise {
    let (e, m) = identical(a, b, nan);
    let first = cases
        .iter()
        .zip(a.iter().zip(b))
        .find_map(|(c, (x, y))| accuracy::first_difference_with(c, x, y, nan));
    Promise {
        dtype: dtype.into(),
        promise: what,
        held: e == m,
        detail: match first {
            None => format!("{e} of {m} elements identical"),
            Some(d) => format!("{} of {m} elements differ; first: {d}", m - e),
        },
    }
}

/// One row of a table: `acc` its per-step accuracy, `identical` its
/// elements bit-identical to the section's baseline and all elements.
#[allow(clippy::too_many_arguments)]
fn row<T: Floating>(
    dtype: &str,
    name: String,
    machine_independent: bool,
    acc: &Accuracy<T>,
    identical: (u64, u64),
    ns: Option<f64>,
    drift: (Vec<f64>, f64),
) -> Row {
    let [mp, mv, mu] = acc.max_ulps_by_output;
    Row {
        dtype: dtype.into(),
        implementation: name,
        machine_independent,
        max_ulp_param: mp,
        max_ulp_square_avg: mv,
        max_ulp_acc_delta: mu,
        mean_ulp: acc.mean_ulps(),
        compared: acc.compared,
        violations: acc.violation_count,
        max_bound_ratio: acc.max_bound_ratio,
        tightest: acc.tightest.as_ref().map(|t| {
            format!(
                "step {} param {} [{}] {}: got {:e}, exact {:e}: {:.3} ULP of a {:.3} ULP bound",
                t.step, t.param, t.index, t.what, t.got, t.exact, t.ulps, t.bound_ulps
            )
        }),
        identical_to_libtorch: identical.0 as f64 / identical.1.max(1) as f64,
        ns_per_element_step: ns,
        drift_median_ulp_by_step: drift.0,
        drift_final_max_ulp: drift.1,
    }
}

/// The high-precision trajectories of a suite, timed on stderr.
fn high_precision_all<T: Floating>(cases: &[Case<T>], opts: &Options) -> Vec<Vec<Vec<Vec<Float>>>> {
    let t0 = Instant::now();
    let hp: Vec<_> = cases.iter().map(high_precision_params).collect();
    progress(
        opts,
        format_args!(
            "{}: ran the high-precision trajectories in {:.2?}",
            T::DTYPE,
            t0.elapsed()
        ),
    );
    hp
}

/// Runs `cases` (parameters of dtype `T`) through every implementation and
/// measures them; adds the section's promises to `promises`. Returns the
/// section and the trajectories, per implementation of
/// [`Implementation::ALL`] and case.
fn section<T: Dtype>(
    cases: &[Case<T>],
    opts: &Options,
    promises: &mut Vec<Promise>,
) -> (Section, Vec<Vec<Trajectory<T>>>) {
    let dtype = T::DTYPE;
    let (element_steps, stepped) = sizes(cases);
    progress(
        opts,
        format_args!(
            "{dtype}: {} cases, {} element-steps",
            cases.len(),
            element_steps
        ),
    );

    let mut trajs: Vec<Vec<Trajectory<T>>> = Vec::new();
    let mut ns = Vec::new();
    for imp in Implementation::ALL {
        let t0 = Instant::now();
        trajs.push(cases.iter().map(|c| imp.run(c)).collect());
        let steps: std::time::Duration = cases
            .iter()
            .map(|c| implementations::time_steps(imp, c))
            .sum();
        ns.push(steps.as_nanos() as f64 / stepped.max(1) as f64);
        progress(
            opts,
            format_args!(
                "{dtype}: ran {:<28} in {:.2?}",
                imp.name::<T>(),
                t0.elapsed()
            ),
        );
    }
    let lib = index(Implementation::Libtorch);
    let hp = high_precision_all(cases, opts);

    let t0 = Instant::now();
    let views: Vec<&[Trajectory<T>]> = trajs.iter().map(Vec::as_slice).collect();
    let bounds: Vec<_> = Implementation::ALL
        .iter()
        .map(|i| i.sqrt_accuracy())
        .collect();
    let accs = accuracies(cases, &views, &bounds, |c, t, &sqrt| {
        accuracy::per_step(c, t, sqrt)
    });
    progress(
        opts,
        format_args!("{dtype}: measured every row in {:.2?}", t0.elapsed()),
    );
    let mut rows = Vec::new();
    for (k, imp) in Implementation::ALL.iter().enumerate() {
        let name = imp.name::<T>();
        promises.push(within_bound_promise(dtype, name, &accs[k]));
        if let Some(other) = imp.promised_bit_identical_to() {
            promises.push(identity_promise(
                dtype,
                format!("{name} = {}, bit for bit", other.name::<T>()),
                cases,
                &trajs[k],
                &trajs[index(other)],
                imp.nan_bits(other),
            ));
        }
        rows.push(row(
            dtype,
            name.to_string(),
            imp.machine_independent(),
            &accs[k],
            identical(
                &trajs[k],
                &trajs[lib],
                imp.nan_bits(Implementation::Libtorch),
            ),
            Some(ns[k]),
            drift(cases, &trajs[k], &hp),
        ));
    }

    let mut pytorch_identical_to_libtorch = None;
    if opts.run_pytorch {
        let t0 = Instant::now();
        let what = "libtorch (tch) = torch.optim.Adadelta (Python), bit for bit".to_string();
        match pytorch::run_pytorch(cases) {
            Ok(pt) => {
                progress(
                    opts,
                    format_args!(
                        "{dtype}: ran torch.optim.Adadelta (Python) in {:.2?}",
                        t0.elapsed()
                    ),
                );
                // Both are libtorch: NaN bits compared too.
                let (e, m) = identical(&pt, &trajs[lib], accuracy::NanBits::Exact);
                pytorch_identical_to_libtorch = Some(e as f64 / m.max(1) as f64);
                promises.push(identity_promise(
                    dtype,
                    what,
                    cases,
                    &pt,
                    &trajs[lib],
                    accuracy::NanBits::Exact,
                ));
            }
            Err(err) => promises.push(Promise {
                dtype: dtype.into(),
                promise: what,
                held: false,
                detail: format!("could not run torch.optim.Adadelta: {err}"),
            }),
        }
    }
    let section = Section {
        dtype: dtype.into(),
        format: format!("binary{}", T::BITS),
        baseline: Implementation::Libtorch.name::<T>().into(),
        cases: cases.len(),
        element_steps,
        rows,
        pytorch_identical_to_libtorch,
    };
    (section, trajs)
}

/// The bfloat16 or float16 section: runs `cases` through every
/// [`HalfImplementation`] (PyTorch when [`Options::run_pytorch`]) and
/// measures them within [`crate::bound::one_step_half`]; adds the
/// section's promises to `promises`. An implementation that cannot run
/// here is left out, said on stderr (PyTorch: a failed promise).
fn half_section<H: Floating>(
    cases: &[Case<H>],
    opts: &Options,
    promises: &mut Vec<Promise>,
) -> Section {
    let dtype = H::DTYPE;
    let (element_steps, stepped) = sizes(cases);
    progress(
        opts,
        format_args!(
            "{dtype}: {} cases, {} element-steps",
            cases.len(),
            element_steps
        ),
    );
    let mut imps = Vec::new();
    let mut trajs: Vec<Vec<Trajectory<H>>> = Vec::new();
    let mut ns = Vec::new();
    for imp in HalfImplementation::ALL {
        if imp == HalfImplementation::PyTorch && !opts.run_pytorch {
            continue;
        }
        let name = imp.name::<H>();
        let t0 = Instant::now();
        match imp.run_all(cases) {
            Ok(t) => {
                let run = t0.elapsed();
                progress(opts, format_args!("{dtype}: ran {name:<28} in {run:.2?}"));
                imps.push(imp);
                trajs.push(t);
                let steps: Option<std::time::Duration> = match imp {
                    // MPFR: timed by the run, whose snapshots cost nothing
                    // beside it (running it again would double its time).
                    HalfImplementation::ReferenceOnce | HalfImplementation::ReferenceOpmath => {
                        Some(run)
                    }
                    _ => cases.iter().map(|c| imp.time_steps(c)).sum(),
                };
                ns.push(steps.map(|d| d.as_nanos() as f64 / stepped.max(1) as f64));
            }
            Err(err) if imp == HalfImplementation::PyTorch => promises.push(Promise {
                dtype: dtype.into(),
                promise: format!("{name} runs"),
                held: false,
                detail: format!("could not run torch.optim.Adadelta: {err}"),
            }),
            Err(err) => progress(opts, format_args!("{dtype}: {name} left out: {err}")),
        }
    }
    let at = |imp: HalfImplementation| imps.iter().position(|&i| i == imp);
    let base = HalfImplementation::ReferenceOpmath;
    let baseline = at(base).expect("the reference always runs");
    let hp = high_precision_all(cases, opts);

    let t0 = Instant::now();
    let views: Vec<&[Trajectory<H>]> = trajs.iter().map(Vec::as_slice).collect();
    let bounds: Vec<_> = imps.iter().map(|i| i.rounding()).collect();
    let accs = accuracies(cases, &views, &bounds, |c, t, &r| {
        accuracy::per_step_half(c, t, r, implementations::HALF_TORCH_THREADS)
    });
    progress(
        opts,
        format_args!("{dtype}: measured every row in {:.2?}", t0.elapsed()),
    );
    // fast's NaN bits are not determined, and torch's bfloat16 NaN bits
    // depend on the tensor's length: NaNs by class and quietness.
    let nan = accuracy::NanBits::QuietAnyPayload;
    let mut rows = Vec::new();
    for (k, &imp) in imps.iter().enumerate() {
        let name = imp.name::<H>();
        promises.push(within_bound_promise(dtype, &name, &accs[k]));
        if let Some(j) = imp.promised_bit_identical_to().and_then(at) {
            promises.push(identity_promise(
                dtype,
                format!("{name} = {}, bit for bit", imps[j].name::<H>()),
                cases,
                &trajs[k],
                &trajs[j],
                nan,
            ));
        }
        rows.push(row(
            dtype,
            name,
            imp.machine_independent(),
            &accs[k],
            identical(&trajs[k], &trajs[baseline], nan),
            ns[k],
            drift(cases, &trajs[k], &hp),
        ));
    }
    Section {
        dtype: dtype.into(),
        format: if H::BITS == 16 && H::PREC == 11 {
            "binary16".into()
        } else {
            dtype.into()
        },
        baseline: base.name::<H>(),
        cases: cases.len(),
        element_steps,
        rows,
        pytorch_identical_to_libtorch: None,
    }
}

/// An error in ULPs with `decimals` decimals, or in scientific notation
/// from 10^7 on (bfloat16's errors at exact values near 0 reach 10^28
/// ULPs of its smallest subnormal spacing).
fn ulps(x: f64, decimals: usize) -> String {
    if x.abs() >= 1e7 {
        format!("{x:.3e}")
    } else {
        format!("{x:.decimals$}")
    }
}

/// The header of a table's column of shares bit-identical to its
/// section's baseline: `= libtorch`, or `= opmath` (the reference rounding
/// as PyTorch does, in the 16-bit sections).
fn baseline_header(sec: &Section) -> &'static str {
    if sec.baseline == Implementation::Libtorch.name::<f32>() {
        "= libtorch"
    } else {
        "= opmath"
    }
}

/// The report as Markdown tables, one per dtype, with their headers and
/// the promises.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "adadelta-rs differential report");
    match &r.torch {
        Ok(i) => {
            let _ = writeln!(
                s,
                "torch {} | CPU capability {} | torch threads {} | {}",
                i.torch_version,
                i.cpu_capability,
                i.num_threads,
                i.mkl_version.as_deref().unwrap_or("MKL version unknown")
            );
        }
        Err(e) => {
            let _ = writeln!(s, "torch: unknown ({e})");
        }
    }
    let _ = writeln!(
        s,
        "Error: |x - exact| in ULPs of the parameters' format at the exact value, per step from the \
         implementation's own state in that format (exact: MPFR {} bits). Drift: parameters after the \
         last step against a trajectory kept in high precision.",
        accuracy::PRECISION
    );
    for sec in &r.sections {
        let _ = writeln!(
            s,
            "\n{} parameters ({}): {} cases, {} element-steps; errors in ULPs of {}{}\n",
            sec.dtype,
            sec.format,
            sec.cases,
            sec.element_steps,
            sec.format,
            if baseline_header(sec) == "= libtorch" {
                String::new()
            } else {
                format!(
                    "; \"{}\": bit-identical to {} (no libtorch row)",
                    baseline_header(sec),
                    sec.baseline
                )
            }
        );
        let _ = writeln!(
            s,
            "| {:<29} | {:>10} | {:>10} | {:>10} | {:>8} | {:>14} | {:>10} | {:>11} | {:>9} |",
            "implementation",
            "max param",
            "max sq_avg",
            "max acc_dl",
            "mean",
            "within bound",
            baseline_header(sec),
            "drift (med)",
            "ns/el"
        );
        let _ = writeln!(
            s,
            "|{:-<31}|{:->12}|{:->12}|{:->12}|{:->10}|{:->16}|{:->12}|{:->13}|{:->11}|",
            "", "", "", "", "", "", "", "", ""
        );
        for row in &sec.rows {
            let _ = writeln!(
                s,
                "| {:<29} | {:>10} | {:>10} | {:>10} | {:>8} | {:>14} | {:>9.3}% | {:>11.3} | {:>9} |",
                row.implementation,
                ulps(row.max_ulp_param, 3),
                ulps(row.max_ulp_square_avg, 3),
                ulps(row.max_ulp_acc_delta, 3),
                ulps(row.mean_ulp, 4),
                if row.violations == 0 { format!("yes ({:.3})", row.max_bound_ratio) } else { format!("NO: {}", row.violations) },
                100.0 * row.identical_to_libtorch,
                row.drift_median_ulp_by_step.last().copied().unwrap_or(0.0),
                row.ns_per_element_step.map_or("-".into(), |ns| format!("{ns:.2}"))
            );
        }
        if let Some(share) = sec.pytorch_identical_to_libtorch {
            let _ = writeln!(
                s,
                "| {:<29} | {:>10} | {:>10} | {:>10} | {:>8} | {:>14} | {:>9.3}% | {:>11} | {:>9} |",
                "torch.optim.Adadelta (Python)",
                "-",
                "-",
                "-",
                "-",
                "-",
                100.0 * share,
                "-",
                "-"
            );
        }
        let _ = writeln!(s);
        for row in &sec.rows {
            if let Some(t) = &row.tightest {
                let _ = writeln!(
                    s,
                    "  tightest for {} ({}): {t}",
                    row.implementation, row.dtype
                );
            }
        }
    }
    let _ = writeln!(s, "\nColumns: largest per-step error of each output and mean over all outputs, in ULPs of the table's format; \"within bound\": no output exceeds the per-element bound of fast/docs/numerics.md (largest error/bound ratio in brackets); \"= libtorch\": share of elements bit-identical to libtorch (bfloat16 and float16: \"= opmath\", to the reference rounding as PyTorch does, NaNs by class; there the rows of PyTorch's rounding reproduce a PyTorch of one intra-op thread, and PyTorch runs with one); ns/el: wall time of the steps alone per element-step, one thread, small tensors (indicative only; cargo bench measures speed, see fast/docs/performance.md).");
    let _ = writeln!(s);
    for p in &r.promises {
        let _ = writeln!(
            s,
            "[{}] {}: {} ({})",
            if p.held { "ok" } else { "FAILED" },
            p.dtype,
            p.promise,
            p.detail
        );
    }
    let _ = writeln!(
        s,
        "\n{}",
        if r.all_held() {
            "all promised agreements hold"
        } else {
            "SOME PROMISED AGREEMENTS FAILED"
        }
    );
    s
}

/// The part of the report that is the same on every machine: per section,
/// the rows of machine-independent implementations (see
/// [`Implementation::machine_independent`]) and their promises, rounded for
/// a stable text. Timings and libtorch figures are left out. The float32
/// section comes first and unlabelled (as before there was a float64 one);
/// the others are headed and their promises labelled by their dtype.
pub fn machine_independent_summary(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for sec in &r.sections {
        let float32 = sec.dtype == <f32 as Element>::DTYPE;
        let label = if float32 {
            String::new()
        } else {
            format!("{}: ", sec.dtype)
        };
        let _ = writeln!(
            s,
            "{label}cases: {}, element-steps: {}",
            sec.cases, sec.element_steps
        );
        let kept: Vec<&Row> = sec
            .rows
            .iter()
            .filter(|row| row.machine_independent)
            .collect();
        for row in &kept {
            let _ = writeln!(
                s,
                "{}: max ULP param {}, square_avg {}, acc_delta {}; mean {}; {} compared, {} outside the bound; \
                 drift median by step {:?}",
                row.implementation,
                ulps(row.max_ulp_param, 3),
                ulps(row.max_ulp_square_avg, 3),
                ulps(row.max_ulp_acc_delta, 3),
                ulps(row.mean_ulp, 4),
                row.compared,
                row.violations,
                row.drift_median_ulp_by_step.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>()
            );
        }
        for p in r.promises.iter().filter(|p| {
            p.dtype == sec.dtype
                && kept
                    .iter()
                    .any(|row| p.promise.starts_with(&row.implementation))
        }) {
            let _ = writeln!(
                s,
                "[{}] {label}{}",
                if p.held { "ok" } else { "FAILED" },
                p.promise
            );
        }
    }
    s
}

/// Writes an SVG plot of the multi-step drift (median ULP error of the
/// parameters against the high-precision trajectory, in ULPs of each row's
/// format) against step, one line per implementation and dtype.
pub fn plot_drift_svg(r: &Report, path: &std::path::Path) -> Result<(), String> {
    use plotters::prelude::*;
    let rows: Vec<&Row> = r.sections.iter().flat_map(|s| &s.rows).collect();
    let steps = rows
        .iter()
        .map(|row| row.drift_median_ulp_by_step.len())
        .max()
        .unwrap_or(0);
    let ymax = rows
        .iter()
        .flat_map(|row| row.drift_median_ulp_by_step.iter().copied())
        .fold(0.0f64, f64::max);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Drift against a high-precision trajectory (median over elements)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..steps.max(2), 0.0..(ymax * 1.15).max(1e-3))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("parameter error, ULPs of its format (median)")
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [
        RED,
        BLUE,
        GREEN,
        MAGENTA,
        CYAN,
        BLACK,
        RGBColor(255, 140, 0),
        RGBColor(128, 128, 128),
    ];
    for (k, row) in rows.iter().enumerate() {
        let color = colors[k % colors.len()];
        // Identical curves (e.g. fast and the reference) are told apart by
        // width only: the first of each dtype is drawn wide.
        let first = k == 0 || rows[k - 1].dtype != row.dtype;
        chart
            .draw_series(LineSeries::new(
                row.drift_median_ulp_by_step
                    .iter()
                    .enumerate()
                    .map(|(t, &y)| (t + 1, y)),
                color.stroke_width(if first { 5 } else { 2 }),
            ))
            .map_err(|e| err(&e))?
            .label(format!("{} ({})", row.implementation, row.dtype))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
