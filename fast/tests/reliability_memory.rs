//! Memory safety of the SIMD kernel (`fast/docs/reliability.md`).
//!
//! * **Guard pages**, natively, on every path this CPU has (AVX-512
//!   included, which valgrind cannot run): each of the kernel's four slices
//!   ends exactly where an inaccessible page begins (or starts exactly where
//!   one ends), so reading or writing one element beyond the slice kills
//!   the test with SIGSEGV. AVX-512's masked tails are checked this way:
//!   masked-off lanes that touched the next page would fault.
//! * **The valgrind workload**: every path, every square root, lengths 0 to
//!   70 and beyond, every start alignment, slices that end exactly at the end
//!   of their heap block, many threads, and the optimizer end to end. Run
//!   natively it checks the results against the scalar path;
//!   `scripts/valgrind.sh` runs it (and the other test binaries) under
//!   `valgrind --tool=memcheck` with each `ADADELTA_KERNEL`, where any
//!   out-of-bounds or uninitialised access is an error.
// Guard pages need mmap/mprotect.
#![cfg(unix)]

mod common;

use std::sync::Arc;

use adadelta::kernel::{run, sqrt, Executor, Isa, Job, Numerics, Threads};
use adadelta::{Adadelta, Coefficients, GroupSpec, Hyperparams, NonFinitePolicy, Options, Param};
use common::{Mapping, Rng};

/// Every (path, numerics) pair this CPU runs.
fn combos() -> Vec<(Isa, Numerics)> {
    let numerics = Numerics::supported();
    let mut v = Vec::new();
    for path in Isa::ALL.into_iter().filter(|p| p.is_supported()) {
        for &n in &numerics {
            // The AVX2 path computes Z0HA only with AVX-512VL.
            let exec = single(path, n);
            if run::<f32>(&mut [], &exec).is_ok() {
                v.push((path, n));
            }
        }
    }
    v
}

fn single(path: Isa, numerics: Numerics) -> Executor {
    Executor {
        numerics,
        isa: Some(path),
        threads: Threads::Single,
        ..Executor::default()
    }
}

/// Every length up to 70 (every tail of the 8- and 16-lane loops, several
/// whole vectors) and some around larger multiples of 16.
fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=70).collect();
    v.extend([127, 128, 129, 255, 257, 1023, 1025]);
    v
}

fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            // NaN bits of fast are not promised (numerics.md, "NaN bits").
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// Random values of every class: finite of several magnitudes, now and then
/// a zero, a subnormal, an infinity or a NaN. `state` values are
/// non-negative, as running averages are.
fn values(rng: &mut Rng, n: usize, state: bool) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let x = match rng.below(16) {
                0 => 0.0,
                1 => f32::from_bits(1 + rng.below(1 << 23) as u32),
                2 => rng.non_finite(),
                _ => rng.f32(),
            };
            if state {
                x.abs()
            } else {
                x
            }
        })
        .collect()
}

/// One step on the scalar path, on copies: the expected result.
fn expected(
    numerics: Numerics,
    c: &Coefficients,
    inputs: &[Vec<f32>; 4],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [mut p, g, mut v, mut u] = inputs.clone();
    let mut jobs = [Job {
        coeffs: c,
        param: &mut p,
        grad: &g,
        square_avg: &mut v,
        acc_delta: &mut u,
    }];
    run(&mut jobs, &single(Isa::Scalar, numerics)).unwrap();
    (p, v, u)
}

/// `n` f32 in their own mapping, flush against an inaccessible page: after
/// the slice (`at_end`) or before it.
struct Guarded {
    map: Mapping,
    offset: usize,
    n: usize,
}

impl Guarded {
    fn new(values: &[f32], at_end: bool) -> Guarded {
        let page = Mapping::page();
        let n = values.len();
        let data_pages = (4 * n).div_ceil(page).max(1);
        let map = Mapping::anonymous((data_pages + 2) * page, libc::PROT_NONE).unwrap();
        map.protect(page, data_pages * page, libc::PROT_READ | libc::PROT_WRITE);
        let offset = if at_end {
            page + data_pages * page - 4 * n
        } else {
            page
        };
        let g = Guarded { map, offset, n };
        g.slice().copy_from_slice(values);
        g
    }

    #[allow(clippy::mut_from_ref)]
    fn slice(&self) -> &mut [f32] {
        // SAFETY: the range lies in the readable, writable pages (by
        // construction), 4-byte aligned; each test lends it out once at a time.
        unsafe { self.map.f32s_mut(self.offset, self.n) }
    }
}

#[test]
fn guard_pages_around_every_slice_on_every_path() {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let mut rng = Rng(77);
    let c = Coefficients::new(&Hyperparams {
        weight_decay: 0.125,
        maximize: true,
        ..Hyperparams::default()
    })
    .unwrap();
    let mut cases = 0;
    for (path, numerics) in combos() {
        for n in lengths() {
            for at_end in [true, false] {
                let inputs = [
                    values(&mut rng, n, false),
                    values(&mut rng, n, false),
                    values(&mut rng, n, true),
                    values(&mut rng, n, true),
                ];
                let want = expected(numerics, &c, &inputs);
                let threads = [
                    (Threads::Single, 1),
                    (Threads::Pool(pool.clone()), 1), // a grain of 1: cuts everywhere
                ];
                for (threads, grain) in threads {
                    let [p, g, v, u] = inputs.each_ref().map(|x| Guarded::new(x, at_end));
                    let mut jobs = [Job {
                        coeffs: &c,
                        param: p.slice(),
                        grad: g.slice(),
                        square_avg: v.slice(),
                        acc_delta: u.slice(),
                    }];
                    let exec = Executor {
                        numerics,
                        isa: Some(path),
                        div_sqrt: None,
                        threads,
                        grain,
                        libtorch_threads: None,
                    };
                    run(&mut jobs, &exec).unwrap();
                    let ctx = format!("{path:?} {numerics:?} n = {n} at_end = {at_end}");
                    assert!(same(p.slice(), &want.0), "{ctx}");
                    assert!(same(v.slice(), &want.1), "{ctx}");
                    assert!(same(u.slice(), &want.2), "{ctx}");
                    cases += 1;
                }
                // The square root alone (`kernel::sqrt`), same placement.
                let x = Guarded::new(&inputs[2], at_end);
                sqrt(&single(path, numerics), x.slice()).unwrap();
                let mut y = inputs[2].clone();
                sqrt(&single(Isa::Scalar, numerics), &mut y).unwrap();
                assert!(same(x.slice(), &y), "{path:?} {numerics:?} sqrt n = {n}");
            }
        }
    }
    println!(
        "{cases} guarded steps: paths {:?}, numerics per path {}",
        Isa::ALL
            .into_iter()
            .filter(|p| p.is_supported())
            .collect::<Vec<_>>(),
        combos().len() / Isa::ALL.into_iter().filter(|p| p.is_supported()).count()
    );
}

/// The valgrind workload (see the module docs). Slices are cut from vectors
/// of exactly `offset + n` elements, so each ends where its heap block
/// ends and memcheck flags a read one element beyond it.
#[test]
fn every_path_on_unaligned_slices_of_odd_lengths() {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap(),
    );
    let mut rng = Rng(5);
    let c = Coefficients::new(&Hyperparams {
        lr: 0.5,
        rho: 0.95,
        eps: 1e-8,
        weight_decay: 0.01,
        ..Hyperparams::default()
    })
    .unwrap();
    let mut covered = Vec::new();
    for (path, numerics) in combos() {
        covered.push(format!("{}/{numerics:?}", path.name()));
        for n in lengths().into_iter().chain([4099, 65_537]) {
            let offsets: [usize; 4] = std::array::from_fn(|_| rng.below(16));
            let inputs = [
                values(&mut rng, n, false),
                values(&mut rng, n, false),
                values(&mut rng, n, true),
                values(&mut rng, n, true),
            ];
            let want = expected(numerics, &c, &inputs);
            let mut bufs: Vec<Vec<f32>> = inputs
                .iter()
                .zip(offsets)
                .map(|(x, off)| {
                    let mut b = Vec::with_capacity(off + n);
                    b.extend((0..off).map(|i| i as f32));
                    b.extend_from_slice(x);
                    b.shrink_to_fit();
                    b
                })
                .collect();
            let threads = if n > 1000 {
                Threads::Pool(pool.clone())
            } else {
                Threads::Single
            };
            let [p, g, v, u] = &mut bufs[..] else {
                unreachable!()
            };
            let mut jobs = [Job {
                coeffs: &c,
                param: &mut p[offsets[0]..],
                grad: &g[offsets[1]..],
                square_avg: &mut v[offsets[2]..],
                acc_delta: &mut u[offsets[3]..],
            }];
            let exec = Executor {
                numerics,
                isa: Some(path),
                div_sqrt: None,
                threads,
                grain: 256,
                libtorch_threads: None,
            };
            run(&mut jobs, &exec).unwrap();
            let ctx = format!("{path:?} {numerics:?} n = {n} offsets {offsets:?}");
            assert!(same(&p[offsets[0]..], &want.0), "{ctx}");
            assert!(same(&v[offsets[2]..], &want.1), "{ctx}");
            assert!(same(&u[offsets[3]..], &want.2), "{ctx}");
            // Nothing before the slices was touched.
            for (b, off) in bufs.iter().zip(offsets) {
                assert!((0..off).all(|i| b[i] == i as f32), "{ctx}");
            }
        }
    }
    // The optimizer end to end on the selected path (`ADADELTA_KERNEL`):
    // odd sizes, several groups, every non-finite policy, a save and a load.
    let dir = common::temp_dir("memory");
    for policy in [
        NonFinitePolicy::Propagate,
        NonFinitePolicy::Error,
        NonFinitePolicy::Skip,
    ] {
        let sizes = [1usize, 7, 17, 33, 100, 1001];
        let mut opt = Adadelta::with_groups(
            vec![
                GroupSpec::new(sizes[..3].iter().map(|&n| Param::new(rng.vec(n))).collect()),
                GroupSpec::new(sizes[3..].iter().map(|&n| Param::new(rng.vec(n))).collect())
                    .lr(0.3)
                    .maximize(true),
            ],
            Options::default(),
        )
        .unwrap()
        .with_non_finite_policy(policy);
        for t in 0..4 {
            for (p, &n) in opt.params_mut().iter_mut().zip(&sizes) {
                let mut g = rng.vec(n);
                if t == 2 {
                    g[n - 1] = f32::NAN;
                }
                p.set_grad(g).unwrap();
            }
            let r = opt.step();
            assert_eq!(r.is_err(), t == 2 && policy == NonFinitePolicy::Error);
        }
        let path = dir.join("opt.json");
        opt.save(&path).unwrap();
        let mut back = Adadelta::with_groups(
            vec![
                GroupSpec::new(
                    sizes[..3]
                        .iter()
                        .map(|&n| Param::new(vec![0.0; n]))
                        .collect(),
                ),
                GroupSpec::new(
                    sizes[3..]
                        .iter()
                        .map(|&n| Param::new(vec![0.0; n]))
                        .collect(),
                ),
            ],
            Options::default(),
        )
        .unwrap();
        back.load(&path).unwrap();
        assert_eq!(back.state_dict(), opt.state_dict());
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!("covered {covered:?}");
}
