//! Scale and concurrency (`fast/docs/reliability.md`): a parameter of more than
//! 2^31 elements (no 32-bit index anywhere), state that cannot be allocated
//! (a typed error, not an abort), the f32 step counter past 2^24 as PyTorch
//! stores it, many optimizers stepping on many threads at once, and many
//! threads saving to one checkpoint path.
//!
//! The 2^31-element step needs about 25 GiB of free disk (three 8 GiB
//! state files, written through shared mappings so that RAM does not
//! bound it) and is `#[ignore]`d:
//!
//! ```sh
//! cargo test -p adadelta --test reliability_scale -- --ignored --nocapture
//! ```

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use adadelta::kernel::{run, Executor, Isa, Job, Threads};
use adadelta::{
    Adadelta, Coefficients, Error, GroupSpec, Hyperparams, NonFinitePolicy, Options, Param,
    ParamViewMut, Parameter, StateDict,
};
#[cfg(unix)]
use common::Mapping;
use common::{content, Rng};

/// A parameter whose values and gradient live in mapped memory.
#[cfg(unix)]
struct Mapped {
    data: Mapping,
    grad: Mapping,
    n: usize,
}

#[cfg(unix)]
impl Parameter for Mapped {
    type Elem = f32;
    fn numel(&self) -> usize {
        self.n
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        // SAFETY: each mapping holds `n` f32 (checked by the accessors),
        // `data` is readable and writable, `grad` readable; the two are
        // distinct mappings and `&mut self` lends them out once.
        let (data, grad) = unsafe { (self.data.f32s_mut(0, self.n), self.grad.f32s(0, self.n)) };
        Ok(ParamViewMut {
            data,
            grad: Some(grad),
        })
    }
    fn zero_grad(&mut self, _: bool) {}
}

#[test]
#[cfg(unix)]
fn state_that_cannot_be_allocated_is_a_typed_error_and_changes_nothing() {
    // 42 TiB of values and 42 TiB of gradient: address space only
    // (MAP_NORESERVE, never touched). The state would need another 84 TiB,
    // more than a 47-bit address space has left, under any overcommit mode.
    let n: usize = (42 << 40) >> 2;
    let page = Mapping::page();
    let (Some(data), Some(grad)) = (
        Mapping::anonymous(4 * n, libc::PROT_READ | libc::PROT_WRITE),
        Mapping::anonymous(4 * n, libc::PROT_READ),
    ) else {
        // `ulimit -v`, or vm.overcommit_memory=2, which counts even
        // MAP_NORESERVE mappings: the machine cannot host this test.
        eprintln!("SKIPPED: cannot reserve 2 x 42 TiB of address space here");
        return;
    };
    let small = |v: f32| {
        let m = Mapping::anonymous(page, libc::PROT_READ | libc::PROT_WRITE).unwrap();
        // SAFETY: one page holds 5 f32; nothing else uses the mapping yet.
        unsafe { m.f32s_mut(0, 5) }.fill(v);
        m
    };
    let params = vec![
        Mapped {
            data: small(1.0),
            grad: small(0.5),
            n: 5,
        },
        Mapped { data, grad, n },
    ];
    let mut opt = Adadelta::new(params, Options::default()).unwrap();
    assert_eq!(
        opt.step(),
        Err(Error::StateAllocation {
            index: 1,
            elements: n
        })
    );
    // Parameter 0's state, created first, was undone; nothing was written.
    assert!(opt.state(0).is_none() && opt.state(1).is_none());
    assert_eq!(opt.state_dict().state.len(), 0);
    let p0 = &mut opt.params_mut()[0];
    assert_eq!(p0.view_mut().unwrap().data, &[1.0; 5]);
    println!(
        "a step of a {n}-element parameter ({} TiB): {}",
        (4 * n) >> 40,
        Error::StateAllocation {
            index: 1,
            elements: n
        }
    );
}

#[test]
fn the_step_counter_passes_2_pow_24_as_pytorch_stores_it() {
    const T24: f32 = 16_777_216.0;
    let mut rng = Rng(8);
    let init = rng.vec(9);
    let make = || {
        Adadelta::new(
            vec![Param::new(init.clone()), Param::new(init.clone())],
            Options::default(),
        )
        .unwrap()
    };
    let (mut opt, mut control) = (make(), make());
    let g0 = rng.vec(9);
    for o in [&mut opt, &mut control] {
        for p in o.params_mut() {
            p.set_grad(g0.clone()).unwrap();
        }
        o.step().unwrap();
    }
    // Parameter 0 resumes from a counter just below 2^24, parameter 1 from
    // just below 2^25 (a whole number beyond 2^24, as an old PyTorch int
    // step converted to float32 can be).
    let mut sd = opt.state_dict();
    sd.state.get_mut(&0).unwrap().step = T24 - 3.0;
    sd.state.get_mut(&1).unwrap().step = 2.0 * T24 - 4.0;
    opt.load_state_dict(sd).unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let g = rng.vec(9);
        for o in [&mut opt, &mut control] {
            for p in o.params_mut() {
                p.set_grad(g.clone()).unwrap();
            }
            o.step().unwrap();
        }
        seen.push((opt.state(0).unwrap().step(), opt.state(1).unwrap().step()));
    }
    // f32 counting: +1 is exact below 2^24. From 2^24 on the f32 spacing is
    // 2 and x + 1 is a tie, rounded to the neighbour with an even
    // significand: x itself for 2^24 and for 2^25 - 4.
    assert_eq!(
        seen,
        [
            (T24 - 2.0, 2.0 * T24 - 4.0),
            (T24 - 1.0, 2.0 * T24 - 4.0),
            (T24, 2.0 * T24 - 4.0),
            (T24, 2.0 * T24 - 4.0),
            (T24, 2.0 * T24 - 4.0),
        ]
    );
    // The counter enters no arithmetic: the parameters and averages are
    // those of the control, whose counter is 6.
    for i in 0..2 {
        assert_eq!(
            common::bits(opt.params()[i].data()),
            common::bits(control.params()[i].data())
        );
        let (a, b) = (opt.state(i).unwrap(), control.state(i).unwrap());
        assert_eq!(common::bits(a.square_avg()), common::bits(b.square_avg()));
        assert_eq!(common::bits(a.acc_delta()), common::bits(b.acc_delta()));
    }
    // Saved as the float32 PyTorch saves, and back.
    let json = opt.state_dict().to_json_string().unwrap();
    assert!(json.contains(r#""step":{"dtype":"float32","shape":[],"bits":[1266679808]}"#));
    let mut back = make();
    back.load_state_dict(StateDict::from_json_str(&json).unwrap())
        .unwrap();
    assert_eq!(back.state(0).unwrap().step().to_bits(), T24.to_bits());
}

/// The executors the concurrency test mixes.
fn executors(pool: &Arc<rayon::ThreadPool>) -> Vec<Executor> {
    let mut v = vec![
        Executor::default(), // rayon's global pool, shared by every thread
        Executor {
            threads: Threads::Single,
            ..Executor::default()
        },
        Executor {
            threads: Threads::Pool(pool.clone()),
            grain: 512,
            ..Executor::default()
        },
    ];
    for p in Isa::ALL.into_iter().filter(|p| p.is_supported()) {
        v.push(Executor {
            isa: Some(p),
            grain: 1024,
            ..Executor::default()
        });
    }
    v
}

/// Optimizer `k` of the concurrency test after `steps` steps; its sizes
/// straddle the executors' thresholds for going parallel.
fn run_optimizer(k: usize, exec: Executor, steps: usize, hook: Arc<AtomicUsize>) -> String {
    let mut rng = Rng(1000 + k as u64);
    let sizes = [70_000 + 17 * k, 33, 4096 + k];
    let mut opt = Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![Param::new(rng.vec(sizes[0]))]),
            GroupSpec::new(vec![
                Param::new(rng.vec(sizes[1])),
                Param::new(rng.vec(sizes[2])),
            ])
            .lr(0.25 + 0.05 * k as f64)
            .rho(0.9 - 0.01 * k as f64)
            .weight_decay(1e-3),
        ],
        Options::default(),
    )
    .unwrap()
    .with_executor(exec)
    .with_non_finite_policy(NonFinitePolicy::Skip);
    opt.register_step_post_hook(move |_| {
        hook.fetch_add(1, Ordering::Relaxed);
    });
    for t in 0..steps {
        for (p, &n) in opt.params_mut().iter_mut().zip(&sizes) {
            let mut g = rng.vec(n);
            if t % 5 == 4 && n == 33 {
                g[7] = f32::NAN; // a skipped step now and then
            }
            p.set_grad(g).unwrap();
        }
        opt.step().unwrap();
    }
    content(&opt)
}

#[test]
fn many_optimizers_step_on_many_threads_at_once() {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let execs = executors(&pool);
    let steps = 12;
    // Alone, one after the other.
    let hook = Arc::new(AtomicUsize::new(0));
    let alone: Vec<String> = execs
        .iter()
        .enumerate()
        .map(|(k, e)| run_optimizer(k, e.clone(), steps, hook.clone()))
        .collect();
    // All at once, twice over, started together.
    let n = 2 * execs.len();
    let barrier = Arc::new(Barrier::new(n));
    let hook = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..n)
        .map(|t| {
            let (k, exec) = (t % execs.len(), execs[t % execs.len()].clone());
            let (barrier, hook) = (barrier.clone(), hook.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (k, run_optimizer(k, exec, steps, hook))
            })
        })
        .collect();
    for t in threads {
        let (k, together) = t.join().unwrap();
        assert!(
            together == alone[k],
            "optimizer {k} differs when run concurrently"
        );
    }
    // Steps 5 and 10 of each run were skipped (NaN), the others hooked.
    assert_eq!(hook.load(Ordering::Relaxed), n * (steps - 2));
}

#[test]
fn many_threads_saving_to_one_path_always_leave_a_whole_checkpoint() {
    let dir = common::temp_dir("concurrent-saves");
    let path = dir.join("ckpt.json");
    common::trained(1, 0).save(&path).unwrap();
    let writers = 4;
    let saves = 25;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each writer's dict is its own trained optimizer, tagged.
    let dicts: Vec<StateDict> = (0..writers)
        .map(|w| {
            let opt = common::trained(1 + w, 70 + w as u64);
            let mut sd = opt.state_dict();
            sd.param_groups[1].extra.insert("writer", w as u64);
            sd
        })
        .collect();
    let dicts = Arc::new(dicts);
    let reader = {
        let (path, stop, dicts) = (path.clone(), stop.clone(), dicts.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let sd = StateDict::load(&path).expect("a whole checkpoint at every moment");
                if let Some(w) = sd.param_groups[1].extra.get("writer") {
                    assert_eq!(sd, dicts[w.to_value().as_u64().unwrap() as usize]);
                }
                let mut opt = common::optimizer();
                opt.load_state_dict(sd).unwrap();
                reads += 1;
            }
            reads
        })
    };
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (path, dicts) = (path.clone(), dicts.clone());
            std::thread::spawn(move || {
                for _ in 0..saves {
                    dicts[w].save(&path).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ckpt.json"], "no temporary file left");
    println!("{writers} threads x {saves} saves to one path, {reads} loads meanwhile: all whole");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Free bytes on the file system of `dir`.
#[cfg(unix)]
fn free_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs fills the zeroed struct it is given; the path is a C string.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0);
        s.f_bavail as u64 * s.f_frsize as u64
    }
}

/// One step on a parameter of 2^31 + 21 elements (odd: a tail on every
/// path), with the default executor (all threads, the best path).
///
/// Values, square_avg and acc_delta are shared mappings of sparse files,
/// the gradient an untouched anonymous mapping (reads as zeros) written
/// only in windows. Windows of 48 elements at the start, every 2^27
/// elements, around the middle (where the threads' cut falls), around
/// 2^31 and at the end hold random data; everywhere else every input is
/// zero. Each window must equal the same step computed on a copy of it
/// (the update is element-wise), which a 32-bit index or offset anywhere
/// would break (an `i32` element index wraps at 2^31, a `u32` byte offset at
/// 2^30 elements).
#[test]
#[cfg(unix)]
#[ignore = "writes 24 GiB through the page cache; run with --ignored"]
fn a_parameter_of_more_than_2_pow_31_elements_steps_exactly() {
    let n: usize = (1 << 31) + 21;
    let bytes = 4 * n;
    let dir = common::temp_dir("huge");
    let need = 3 * bytes as u64 + (1 << 30);
    let free = free_bytes(&dir);
    assert!(
        free >= need,
        "needs {need} bytes free in {}, has {free}",
        dir.display()
    );
    let files: Vec<std::fs::File> = ["param", "square_avg", "acc_delta"]
        .iter()
        .map(|name| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.join(name))
                .unwrap();
            f.set_len(bytes as u64).unwrap(); // sparse
            f
        })
        .collect();
    let maps: Vec<Mapping> = files
        .iter()
        .map(|f| Mapping::file(f, bytes).unwrap())
        .collect();
    let grad = Mapping::anonymous(bytes, libc::PROT_READ | libc::PROT_WRITE).unwrap();
    const W: usize = 48;
    let mut starts: Vec<usize> = (0..n - W).step_by(1 << 27).collect();
    starts.extend([n / 2 - W / 2, (1 << 31) - W / 2, n - W]);
    starts.sort();
    starts.dedup_by(|b, a| *b < *a + W); // no overlap
    let mut rng = Rng(31);
    let hyper = Hyperparams {
        lr: 0.5,
        weight_decay: 0.01,
        ..Hyperparams::default()
    };
    let c = Coefficients::new(&hyper).unwrap();
    // SAFETY: four distinct mappings of `bytes` bytes each, readable and
    // writable, each lent out once, for the duration of this test.
    let (p, g, v, u) = unsafe {
        (
            maps[0].f32s_mut(0, n),
            grad.f32s_mut(0, n),
            maps[1].f32s_mut(0, n),
            maps[2].f32s_mut(0, n),
        )
    };
    let mut expected = Vec::new();
    for &s in &starts {
        let w = s..s + W;
        p[w.clone()].copy_from_slice(&rng.vec(W));
        g[w.clone()].copy_from_slice(&rng.vec(W));
        v[w.clone()].copy_from_slice(&rng.vec(W).iter().map(|x| x.abs()).collect::<Vec<_>>());
        u[w.clone()].copy_from_slice(&rng.vec(W).iter().map(|x| x.abs()).collect::<Vec<_>>());
        let (mut pp, mut vv, mut uu) = (
            p[w.clone()].to_vec(),
            v[w.clone()].to_vec(),
            u[w.clone()].to_vec(),
        );
        adadelta::step(&c, &mut pp, &g[w.clone()], &mut vv, &mut uu).unwrap();
        expected.push((pp, vv, uu));
    }
    let t = std::time::Instant::now();
    let mut jobs = [Job {
        coeffs: &c,
        param: p,
        grad: g,
        square_avg: v,
        acc_delta: u,
    }];
    run(&mut jobs, &Executor::default()).unwrap();
    let elapsed = t.elapsed();
    let [job] = jobs;
    for (&s, (pp, vv, uu)) in starts.iter().zip(&expected) {
        let w = s..s + W;
        assert_eq!(
            common::bits(&job.param[w.clone()]),
            common::bits(pp),
            "window at {s}"
        );
        assert_eq!(
            common::bits(&job.square_avg[w.clone()]),
            common::bits(vv),
            "window at {s}"
        );
        assert_eq!(
            common::bits(&job.acc_delta[w.clone()]),
            common::bits(uu),
            "window at {s}"
        );
    }
    // Elements outside the windows had all-zero inputs: their update is 0.
    for s in [W, (1 << 27) + 100, (1 << 31) - W, n - W - 1] {
        assert!(!starts.iter().any(|&w| (w..w + W).contains(&s)));
        let out = [job.param[s], job.square_avg[s], job.acc_delta[s]];
        assert_eq!(out.map(f32::to_bits), [0; 3], "element {s}");
    }
    println!(
        "{n} elements ({} windows checked) in {:.1} s on {} threads, path {}",
        starts.len(),
        elapsed.as_secs_f64(),
        rayon::current_num_threads(),
        Isa::selected().unwrap().name()
    );
    drop(maps);
    drop(files);
    std::fs::remove_dir_all(&dir).unwrap();
}
