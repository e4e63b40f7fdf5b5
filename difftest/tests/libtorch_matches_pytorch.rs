//! `adadelta_difftest::libtorch::run` (Adadelta from tch ops) is bit-identical
//! to real `torch.optim.Adadelta` (PyTorch 2.13 in the project venv): params,
//! `square_avg`, `acc_delta` and the step counter after every step, for
//! libtorch at 1 and 2 threads.
//!
//! The cases are deterministic (splitmix64 with fixed seeds): every
//! combination of lr {1, 0, 0.37} x rho {0, 0.9, 1} x eps {0, 1e-6, 1e-8} x
//! weight_decay {0, 0.1} x maximize on small tensors; sizes around every SIMD
//! width and beyond ATen's 32768-element grain (1 .. 100003) on two configs;
//! a few other hyperparameters; values drawn from normal, subnormal, +-0,
//! tiny, large and overflowing ranges; gradients absent at some steps.

use std::time::Instant;

use adadelta_difftest::case::{Case, Hyper, Snapshot, Trajectory};
use adadelta_difftest::{libtorch, pytorch};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn sign(&mut self) -> f64 {
        if self.next_u64() & 1 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `10^[lo, hi)` with a random sign.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.sign() * 10f64.powf(lo + (hi - lo) * self.unit())
    }
}

/// How values are drawn.
#[derive(Clone, Copy)]
enum Dist {
    /// Mostly normal, with subnormals, zeros, tiny and large values mixed in.
    Mixed,
    /// Magnitudes up to 1e30, so squares overflow to infinity.
    Extreme,
}

fn value(rng: &mut Rng, dist: Dist) -> f32 {
    match dist {
        Dist::Extreme => match rng.below(4) {
            0 => rng.log_uniform(18.0, 30.0) as f32,
            1 => rng.log_uniform(-45.0, -30.0) as f32,
            _ => rng.normal() as f32,
        },
        Dist::Mixed => match rng.below(100) {
            0..=59 => (rng.normal() * 10f64.powf(-3.0 + 4.0 * rng.unit())) as f32,
            60..=69 => {
                // Subnormal (or zero) with a random sign.
                let bits = rng.below(0x0080_0000) as u32 | ((rng.next_u64() as u32) & 0x8000_0000);
                f32::from_bits(bits)
            }
            70..=74 => {
                if rng.next_u64() & 1 == 0 {
                    0.0
                } else {
                    -0.0
                }
            }
            75..=84 => rng.log_uniform(-38.0, -20.0) as f32,
            85..=94 => rng.log_uniform(3.0, 18.0) as f32,
            _ => (rng.sign() * 2f64.powi(rng.below(21) as i32 - 10)) as f32,
        },
    }
}

fn values(rng: &mut Rng, n: usize, dist: Dist) -> Vec<f32> {
    (0..n).map(|_| value(rng, dist)).collect()
}

/// A case with params of the given sizes, `steps` steps, each gradient
/// absent with probability `absent` percent.
fn make_case(
    rng: &mut Rng,
    name: String,
    hyper: Hyper,
    sizes: &[usize],
    steps: usize,
    absent: u64,
    dist: Dist,
) -> Case {
    let params = sizes.iter().map(|&n| values(rng, n, dist)).collect();
    let grads = (0..steps)
        .map(|_| {
            sizes
                .iter()
                .map(|&n| (rng.below(100) >= absent).then(|| values(rng, n, dist)))
                .collect()
        })
        .collect();
    Case {
        name,
        hyper,
        params,
        grads,
    }
}

fn cases() -> Vec<Case> {
    let mut rng = Rng(0x00AD_ADE1_7A00_2013);
    let mut cases = Vec::new();

    // Every option combination on small tensors.
    for &lr in &[1.0, 0.0, 0.37] {
        for &rho in &[0.0, 0.9, 1.0] {
            for &eps in &[0.0, 1e-6, 1e-8] {
                for &weight_decay in &[0.0, 0.1] {
                    for &maximize in &[false, true] {
                        let hyper = Hyper {
                            lr,
                            rho,
                            eps,
                            weight_decay,
                            maximize,
                            foreach: false,
                        };
                        let name = format!(
                            "grid lr={lr} rho={rho} eps={eps} wd={weight_decay} max={maximize}"
                        );
                        cases.push(make_case(
                            &mut rng,
                            name,
                            hyper,
                            &[7, 33, 1],
                            6,
                            15,
                            Dist::Mixed,
                        ));
                    }
                }
            }
        }
    }

    // Sizes: tails of every SIMD width (8 / 16 floats, 32-float unrolled
    // bodies), sqrt's 2048 grain and ATen's 32768 grain.
    let sized = [
        Hyper::default(),
        Hyper {
            lr: 0.37,
            rho: 0.9,
            eps: 1e-8,
            weight_decay: 0.1,
            maximize: true,
            foreach: false,
        },
    ];
    for &n in &[
        1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 33000, 100003,
    ] {
        for (k, &hyper) in sized.iter().enumerate() {
            let name = format!("size {n} config {k}");
            cases.push(make_case(
                &mut rng,
                name,
                hyper,
                &[n, 17, 5],
                5,
                10,
                Dist::Mixed,
            ));
        }
    }

    // Other hyperparameters.
    for (k, &(lr, rho, eps, weight_decay)) in [
        (0.05, 0.95, 1e-8, 0.0),
        (1e-3, 0.99, 1e-3, 0.01),
        (2.5, 0.5, 1e-10, 0.3),
        (0.37, 0.123, 1e-6, 1e-4),
    ]
    .iter()
    .enumerate()
    {
        let hyper = Hyper {
            lr,
            rho,
            eps,
            weight_decay,
            maximize: k % 2 == 1,
            foreach: false,
        };
        cases.push(make_case(
            &mut rng,
            format!("other {k}"),
            hyper,
            &[100, 3],
            8,
            10,
            Dist::Mixed,
        ));
    }

    // Overflow to infinity and NaN.
    for (k, &hyper) in sized.iter().enumerate() {
        cases.push(make_case(
            &mut rng,
            format!("extreme {k}"),
            hyper,
            &[65, 1000],
            5,
            10,
            Dist::Extreme,
        ));
    }

    // Absent gradients: no gradient at all in the first step, a param that
    // never gets one, a param that only gets one from step 3.
    let mut c = make_case(
        &mut rng,
        "absent".into(),
        Hyper::default(),
        &[9, 40, 3],
        6,
        0,
        Dist::Mixed,
    );
    for step in 0..c.grads.len() {
        c.grads[step][1] = None;
        if step < 2 {
            c.grads[step][2] = None;
        }
    }
    c.grads[0] = vec![None, None, None];
    cases.push(c);

    cases
}

fn cmp_vec(what: &str, a: &[f32], b: &[f32]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!(
            "{what}: length {} (libtorch) vs {} (pytorch)",
            a.len(),
            b.len()
        ));
    }
    match a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => {
            let count = a
                .iter()
                .zip(b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count();
            Err(format!(
                "{what}[{i}]: libtorch {:#010x} ({:e}) vs pytorch {:#010x} ({:e}); {count} of {} elements differ",
                a[i].to_bits(),
                a[i],
                b[i].to_bits(),
                b[i],
                a.len()
            ))
        }
    }
}

fn cmp_opt(what: &str, a: &Option<Vec<f32>>, b: &Option<Vec<f32>>) -> Result<(), String> {
    match (a, b) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) => cmp_vec(what, a, b),
        _ => Err(format!(
            "{what}: state present {} (libtorch) vs {} (pytorch)",
            a.is_some(),
            b.is_some()
        )),
    }
}

fn cmp_snapshot(a: &Snapshot, b: &Snapshot) -> Result<(), String> {
    if a.params.len() != b.params.len() {
        return Err(format!(
            "{} params (libtorch) vs {} (pytorch)",
            a.params.len(),
            b.params.len()
        ));
    }
    for i in 0..a.params.len() {
        cmp_vec(&format!("params[{i}]"), &a.params[i], &b.params[i])?;
        cmp_opt(
            &format!("square_avg[{i}]"),
            &a.square_avg[i],
            &b.square_avg[i],
        )?;
        cmp_opt(&format!("acc_delta[{i}]"), &a.acc_delta[i], &b.acc_delta[i])?;
        let (sa, sb) = (a.step[i].map(f32::to_bits), b.step[i].map(f32::to_bits));
        if sa != sb {
            return Err(format!("step[{i}]: {sa:?} (libtorch) vs {sb:?} (pytorch)"));
        }
    }
    Ok(())
}

/// The first difference of a case, if any.
fn cmp_trajectory(case: &Case, a: &Trajectory, b: &Trajectory) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!(
            "case {:?}: {} snapshots vs {}",
            case.name,
            a.len(),
            b.len()
        ));
    }
    for (t, (sa, sb)) in a.iter().zip(b).enumerate() {
        cmp_snapshot(sa, sb)
            .map_err(|e| format!("case {:?}, after step {}: {e}", case.name, t + 1))?;
    }
    Ok(())
}

#[test]
fn libtorch_is_bit_identical_to_torch_optim_adadelta() {
    let cases = cases();
    let elements: usize = cases
        .iter()
        .map(|c| c.params.iter().map(Vec::len).sum::<usize>() * c.grads.len())
        .sum();

    let t0 = Instant::now();
    let expected =
        pytorch::run_pytorch(&cases).unwrap_or_else(|e| panic!("running PyTorch failed: {e}"));
    eprintln!(
        "pytorch: {} cases ({elements} element-steps) in {:.2?}",
        cases.len(),
        t0.elapsed()
    );

    // Coverage of special values among the expected params and state.
    let (mut nan, mut inf, mut sub, mut zero) = (0usize, 0usize, 0usize, 0usize);
    for snap in expected.iter().flatten() {
        let state = snap.square_avg.iter().chain(&snap.acc_delta).flatten();
        for x in snap.params.iter().chain(state).flatten() {
            nan += x.is_nan() as usize;
            inf += x.is_infinite() as usize;
            sub += x.is_subnormal() as usize;
            zero += (*x == 0.0) as usize;
        }
    }
    eprintln!("expected values: {nan} NaN, {inf} infinite, {sub} subnormal, {zero} zero");

    let mut failures = Vec::new();
    for threads in [1, 2] {
        let t0 = Instant::now();
        for (case, want) in cases.iter().zip(&expected) {
            let got = libtorch::run_with_threads(case, threads);
            if let Err(e) = cmp_trajectory(case, &got, want) {
                failures.push(format!("[libtorch {threads} thread(s)] {e}"));
            }
        }
        eprintln!("libtorch at {threads} thread(s): {:.2?}", t0.elapsed());
    }
    assert!(
        failures.is_empty(),
        "{} of {} case runs differ from torch.optim.Adadelta; first ones:\n{}",
        failures.len(),
        2 * cases.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn torch_info_reports_the_pinned_torch() {
    let info = pytorch::torch_info().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{info:?}");
    assert!(info.torch_version.starts_with("2.13.0"), "{info:?}");
    assert!(info.num_threads >= 1, "{info:?}");
}

/// float64 parameters: libtorch through tch (`Double` tensors, the f64
/// scalars) equals `torch.optim.Adadelta` on float64 tensors bit for bit,
/// NaN bits and step counters included, at 1 and 2 threads, on every
/// setting of the default suite and on wide and non-finite values.
#[test]
fn libtorch_f64_is_bit_identical_to_torch_optim_adadelta_f64() {
    use adadelta_difftest::accuracy::first_difference;
    use adadelta_difftest::suite::{default_hypers, random_case, Values};
    let sizes = [1, 7, 8, 33, 100, 40_000];
    let mut cases: Vec<Case<f64>> = default_hypers()
        .into_iter()
        .enumerate()
        .map(|(k, (name, h))| random_case(name, 500 + k as u64, h, &sizes, 4, Values::Normal, 0.1))
        .collect();
    let d = Hyper::default();
    cases.push(random_case("wide", 600, d, &sizes, 4, Values::Wide, 0.1));
    cases.push(random_case(
        "NaN",
        700,
        d,
        &sizes,
        3,
        Values::NonFinite,
        0.1,
    ));
    let want =
        pytorch::run_pytorch(&cases).unwrap_or_else(|e| panic!("running PyTorch failed: {e}"));
    for threads in [1, 2] {
        for (case, want) in cases.iter().zip(&want) {
            let got = libtorch::run_with_threads(case, threads);
            if let Some(d) = first_difference(case, &got, want) {
                panic!("[libtorch {threads} thread(s)] case {:?}: {d}", case.name);
            }
            let steps = |t: &Trajectory<f64>| t.iter().map(|s| s.step.clone()).collect::<Vec<_>>();
            assert_eq!(steps(&got), steps(want), "case {:?}", case.name);
        }
    }
}
