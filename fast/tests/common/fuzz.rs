//! The fuzzers' driver, shared by `reliability_fuzz` and
//! `reliability_fuzz_files`: the seed, range and threads from the
//! environment, the inputs spread over threads, and a watchdog that saves an
//! input and aborts the process when one runs too long (a hang is a
//! failure, and a hung test would never report).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{env_or, temp_dir};

/// What each thread is on: the input, since when, and its bytes.
type Current = Mutex<Vec<Option<(u64, Instant, Vec<u8>)>>>;

/// One fuzzing run: which inputs, on how many threads, and what a failure
/// says.
pub struct Fuzz {
    /// The seed every input derives from (`ADADELTA_FUZZ_SEED`).
    pub seed: u64,
    /// The first input (`ADADELTA_FUZZ_START`).
    pub start: u64,
    /// How many inputs (`ADADELTA_FUZZ_CASES`).
    pub cases: u64,
    /// How many threads (`ADADELTA_FUZZ_THREADS`, at least 1).
    pub threads: u64,
    /// The test binary, for the replay commands.
    pub test: &'static str,
    /// The saved inputs' file names: `{prefix}seed-S-input-C.{ext}`.
    pub prefix: &'static str,
    pub ext: &'static str,
    /// How long one input may run before it counts as a hang.
    pub hang: Duration,
}

impl Fuzz {
    /// The run the environment asks for, else `seed` and `cases` from the
    /// start, on one thread.
    pub fn from_env(seed: u64, cases: u64) -> Self {
        Fuzz {
            seed: env_or("ADADELTA_FUZZ_SEED", seed),
            start: env_or("ADADELTA_FUZZ_START", 0),
            cases: env_or("ADADELTA_FUZZ_CASES", cases),
            threads: env_or("ADADELTA_FUZZ_THREADS", 1).max(1),
            test: "",
            prefix: "",
            ext: "bin",
            hang: Duration::from_secs(20),
        }
    }

    /// Saves a failing input under the target's temporary directory.
    pub fn save(&self, case: u64, bytes: &[u8]) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!(
            "{}seed-{}-input-{case}.{}",
            self.prefix, self.seed, self.ext
        ));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Saves input `case` and panics, saying how to replay it.
    pub fn fail(&self, case: u64, kind: &dyn std::fmt::Debug, bytes: &[u8], why: &str) -> ! {
        let path = self.save(case, bytes);
        panic!(
            "input {case} ({kind:?}) of seed {:#x} {why}; saved to {}; replay: \
             ADADELTA_FUZZ_SEED={} ADADELTA_FUZZ_START={case} ADADELTA_FUZZ_CASES=1 \
             cargo test -p adadelta --test {} -- --nocapture",
            self.seed,
            path.display(),
            self.seed,
            self.test
        );
    }

    /// Runs every input: `input(case)` makes it, `check(tally, kind, bytes,
    /// dir, case)` checks it (in `dir`, a temporary directory of its
    /// thread) and counts it. Returns the threads' tallies, each merged
    /// into the first by `merge`, and the run's time. A panic in a thread
    /// is re-raised here, once all have stopped.
    pub fn run<K, T: Default + Send>(
        &self,
        input: impl Fn(u64) -> (K, Vec<u8>) + Sync,
        check: impl Fn(&mut T, K, &[u8], &std::path::Path, u64) + Sync,
        merge: impl Fn(&mut T, &T),
    ) -> (T, Duration) {
        let current: Current = Mutex::new(vec![None; self.threads as usize]);
        let (stop, done, t0) = (AtomicBool::new(false), AtomicU64::new(0), Instant::now());
        let tallies = std::thread::scope(|s| {
            s.spawn(|| self.watch(&current, &stop));
            let workers: Vec<_> = (0..self.threads)
                .map(|t| {
                    let (current, done, input, check) = (&current, &done, &input, &check);
                    s.spawn(move || {
                        let dir = temp_dir(&format!("{}fuzz-{t}", self.prefix));
                        let _clear = Clear(current, t as usize);
                        let mut tally = T::default();
                        let mut case = self.start + t;
                        while case < self.start + self.cases {
                            let (kind, bytes) = input(case);
                            current.lock().unwrap()[t as usize] =
                                Some((case, Instant::now(), bytes.clone()));
                            check(&mut tally, kind, &bytes, &dir, case);
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if n % 100_000 == 0 {
                                eprintln!("{n} inputs, {:.0} s", t0.elapsed().as_secs_f64());
                            }
                            case += self.threads;
                        }
                        let _ = std::fs::remove_dir_all(&dir);
                        tally
                    })
                })
                .collect();
            let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
            stop.store(true, Ordering::Relaxed);
            results
        });
        let mut all = T::default();
        for t in tallies {
            match t {
                Ok(t) => merge(&mut all, &t),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        (all, t0.elapsed())
    }

    /// The watchdog: every 200 ms, aborts the process (after saving the
    /// input) if a thread has been on one input longer than `hang`.
    fn watch(&self, current: &Current, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let current = current.lock().unwrap_or_else(|e| e.into_inner());
            for (case, since, bytes) in current.iter().flatten() {
                if since.elapsed() > self.hang {
                    let path = self.save(*case, bytes);
                    eprintln!(
                        "HANG: input {case} of seed {} ran over {:?}; saved to {}; replay: \
                         ADADELTA_FUZZ_INPUT={} cargo test -p adadelta --test {}",
                        self.seed,
                        self.hang,
                        path.display(),
                        path.display(),
                        self.test
                    );
                    std::process::abort();
                }
            }
        }
    }
}

/// Clears a thread's slot when it ends, by a failure too (so that the
/// watchdog does not take a failed input for a hang).
struct Clear<'a>(&'a Current, usize);

impl Drop for Clear<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner())[self.1] = None;
    }
}
