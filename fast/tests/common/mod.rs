//! Helpers shared by the `reliability_*` and `api_*` tests (`fast/docs/reliability.md`).
//! Each test binary uses a part of them.
#![allow(dead_code)]

pub mod fuzz;

use adadelta::{Adadelta, Error, GroupSpec, Options, Param, ParamViewMut, Parameter, StateDict};

/// Deterministic pseudo-random numbers (splitmix64): every test input is a
/// function of a seed, so that any failure can be replayed.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `weighted`'s items, with probability proportional to its
    /// weight (a fuzzer's choice of mutator).
    pub fn pick<K: Copy>(&mut self, weighted: &[(K, u64)]) -> K {
        let total: u64 = weighted.iter().map(|k| k.1).sum();
        let mut r = self.next() % total;
        for &(k, w) in weighted {
            if r < w {
                return k;
            }
            r -= w;
        }
        unreachable!()
    }

    /// A finite value of one of several magnitudes, either sign.
    pub fn f32(&mut self) -> f32 {
        let unit = (self.next() >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
        let scale = [1e-3, 0.1, 1.0, 10.0][self.below(4)];
        (unit * 2.0 - 1.0) * scale
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }

    /// NaN (with a random payload and sign), `+inf` or `-inf`.
    pub fn non_finite(&mut self) -> f32 {
        match self.below(4) {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            _ => f32::from_bits(0x7f80_0001 | (self.next() as u32 & 0x807f_ffff)),
        }
    }
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Everything observable about an optimizer of [`Param`]s, bit for bit: the
/// state dict as JSON (every tensor as bit patterns, every option exactly),
/// every parameter's values and gradient, the policy and the skip counter.
pub fn snapshot(opt: &Adadelta) -> String {
    format!(
        "{}\n{:?} {}",
        content(opt),
        opt.non_finite_policy(),
        opt.skipped_steps()
    )
}

/// [`snapshot`] without the policy and the skip counter: what a step may
/// change.
pub fn content(opt: &Adadelta) -> String {
    let mut s = opt
        .state_dict()
        .to_json_string()
        .expect("an optimizer's own state dict serialises");
    for p in opt.params() {
        s.push_str(&format!(
            "\n{:?} {:?} {:?}",
            p.shape(),
            bits(p.data()),
            p.grad().map(bits)
        ));
    }
    s
}

/// A parameter whose gradient may have another length than its values (a
/// framework's tensor does not check it as `Param::set_grad` does): a step
/// must refuse it before writing anything.
pub struct BadGrad {
    pub data: Vec<f32>,
    pub grad: Vec<f32>,
}

impl Parameter for BadGrad {
    type Elem = f32;
    fn numel(&self) -> usize {
        self.data.len()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        Ok(ParamViewMut {
            data: &mut self.data,
            grad: Some(&self.grad),
        })
    }
    fn zero_grad(&mut self, _: bool) {}
}

/// Two groups, three parameters of shapes (3,), (2, 3), (2, 2, 2) with
/// options of every kind and an extra key: the optimizer the loaders are
/// fuzzed against.
pub fn optimizer() -> Adadelta {
    Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![
                Param::new(vec![0.5, -1.0, 2.0]),
                Param::with_shape(vec![0.25; 6], vec![2, 3]).unwrap(),
            ])
            .lr(0.5)
            .weight_decay(0.1)
            .maximize(true)
            .extra("initial_lr", 0.5),
            GroupSpec::new(vec![Param::with_shape(
                (0..8).map(|i| i as f32 - 3.5).collect(),
                vec![2, 2, 2],
            )
            .unwrap()])
            .rho(0.95),
        ],
        Options::default(),
    )
    .unwrap()
}

/// Gives every parameter of `opt` a finite gradient drawn from `rng`.
pub fn set_grads(opt: &mut Adadelta, rng: &mut Rng) {
    for p in opt.params_mut() {
        let g = rng.vec(p.numel());
        p.set_grad(g).unwrap();
    }
}

/// [`optimizer`] after `steps` steps with gradients from `seed`.
pub fn trained(steps: usize, seed: u64) -> Adadelta {
    let mut opt = optimizer();
    let mut rng = Rng(seed);
    for _ in 0..steps {
        set_grads(&mut opt, &mut rng);
        opt.step().unwrap();
    }
    opt
}

/// A state dict that round-trips through JSON must give the same JSON.
pub fn json(sd: &StateDict) -> String {
    sd.to_json_string().expect("serialises")
}

/// A fresh directory under the target's temporary directory, its own on
/// every call (tests of one binary run at once, and one may call this with
/// the same tag as another).
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("reliability-{tag}-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The value of environment variable `name` as a number, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Memory mapped with `mmap`, for the tests that need page protection
/// (guard pages), file-backed memory (a parameter larger than RAM) or
/// address space without memory behind it (`MAP_NORESERVE`). Unmapped on
/// drop.
#[cfg(unix)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

#[cfg(unix)]
impl Mapping {
    /// The page size.
    pub fn page() -> usize {
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
    }

    /// `len` bytes of private anonymous memory with protection `prot`,
    /// reserving no swap (`MAP_NORESERVE`): pages cost memory only once
    /// written. `None` if the kernel refuses.
    pub fn anonymous(len: usize, prot: libc::c_int) -> Option<Mapping> {
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The first `len` bytes of `file`, shared and writable: writes go to
    /// the file, and the page cache can write them back and drop them, so
    /// the mapping may be larger than RAM.
    pub fn file(file: &std::fs::File, len: usize) -> Option<Mapping> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: a fresh shared mapping of a file this process created for
        // the test; nothing else maps it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Sets the protection of the pages `[offset, offset + len)`.
    pub fn protect(&self, offset: usize, len: usize, prot: libc::c_int) {
        assert!(offset.is_multiple_of(Self::page()) && offset + len <= self.len);
        // SAFETY: the range is inside this mapping and page-aligned.
        let r = unsafe { libc::mprotect(self.ptr.add(offset).cast(), len, prot) };
        assert_eq!(r, 0, "mprotect");
    }

    /// `n` f32 starting `offset` bytes into the mapping.
    ///
    /// # Safety
    /// The range must be inside the mapping, 4-byte aligned and readable and
    /// writable, and not lent out twice at the same time.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn f32s_mut(&self, offset: usize, n: usize) -> &mut [f32] {
        assert!(offset.is_multiple_of(4) && offset + 4 * n <= self.len);
        // SAFETY: in bounds and aligned (checked); readable, writable and
        // unaliased (the caller's promise).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset).cast(), n) }
    }

    /// `n` f32 starting `offset` bytes into the mapping, read-only.
    ///
    /// # Safety
    /// The range must be inside the mapping, 4-byte aligned and readable,
    /// and not lent out mutably at the same time.
    pub unsafe fn f32s(&self, offset: usize, n: usize) -> &[f32] {
        assert!(offset.is_multiple_of(4) && offset + 4 * n <= self.len);
        // SAFETY: as for `f32s_mut`, read-only.
        unsafe { std::slice::from_raw_parts(self.ptr.add(offset).cast(), n) }
    }
}

#[cfg(unix)]
impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: this mapping, created by mmap with this length.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

// SAFETY: a Mapping is plain memory; access goes through the `unsafe`
// accessors, whose callers keep it unaliased.
#[cfg(unix)]
unsafe impl Send for Mapping {}

// ---- Byte mutators of the loader fuzzers ----

/// `b` with 1 to 8 bits flipped (`b` not empty).
pub fn flip_bits(mut b: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    for _ in 0..1 + rng.below(8) {
        let i = rng.below(b.len());
        b[i] ^= 1 << rng.below(8);
    }
    b
}

/// `b` cut at a random byte.
pub fn truncate(b: &[u8], rng: &mut Rng) -> Vec<u8> {
    b[..rng.below(b.len() + 1)].to_vec()
}

/// The start of `a` and the end of `b`, each cut at a random byte.
pub fn splice(a: &[u8], b: &[u8], rng: &mut Rng) -> Vec<u8> {
    let (i, j) = (rng.below(a.len() + 1), rng.below(b.len() + 1));
    [&a[..i], &b[j..]].concat()
}
