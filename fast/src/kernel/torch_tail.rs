//! Where PyTorch computes a 16-bit tensor's elements in scalar code: the
//! rule [`run_at`] gives, measured with torch 2.13 on CPU.
//!
//! ATen's element-wise loops run whole vectors of [`WIDTH`] elements and the
//! rest of each range in scalar code. A tensor of fewer than [`GRAIN`]
//! elements (or with one intra-op thread) is one range; a larger one is
//! split by `at::parallel_for` (OpenMP) into `min(threads, ⌈len / GRAIN⌉)`
//! chunks of `⌈len / chunks⌉` elements, the last shorter, each a range. So
//! the scalar elements are the last `chunk_len % WIDTH` of each chunk.
//!
//! For bfloat16 and float16 the scalar code of `add(t, alpha=)` rounds
//! `alpha·t` to the dtype before adding, where the vectorised code fuses
//! (`fast/docs/numerics.md`, "bfloat16 and float16").
//!
//! ```
//! use adadelta::kernel::torch_tail::run_at;
//! // 100 elements, 1 thread: [0, 96) vectorised, [96, 100) scalar.
//! assert_eq!(run_at(0, 100, 1), (false, 96));
//! assert_eq!(run_at(96, 100, 1), (true, 100));
//! // 100003 elements, 2 threads: chunks [0, 50002) and [50002, 100003),
//! // whose last 18 and 17 elements are scalar.
//! assert_eq!(run_at(0, 100_003, 2), (false, 49_984));
//! assert_eq!(run_at(49_984, 100_003, 2), (true, 50_002));
//! assert_eq!(run_at(50_002, 100_003, 2), (false, 99_986));
//! ```

/// ATen's `at::internal::GRAIN_SIZE`: ranges shorter than this are not
/// split across threads.
pub const GRAIN: usize = 32768;

/// The elements ATen's vectorised loop covers per iteration for bfloat16 and
/// float16, at its AVX2 and AVX-512 capabilities alike (measured).
pub const WIDTH: usize = 32;

/// For element `at` of a tensor of `len` elements (`at < len`) stepped by a
/// PyTorch with `threads` intra-op threads: whether PyTorch computes it in
/// scalar code, and the end of the run of elements that share that answer.
pub fn run_at(at: usize, len: usize, threads: usize) -> (bool, usize) {
    debug_assert!(at < len);
    let chunks = if len < GRAIN || threads <= 1 {
        1
    } else {
        threads.min(len.div_ceil(GRAIN))
    };
    let chunk = len.div_ceil(chunks);
    let start = at / chunk * chunk;
    let end = len.min(start + chunk);
    let scalar_from = end - (end - start) % WIDTH;
    if at < scalar_from {
        (false, scalar_from)
    } else {
        (true, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar elements of a tensor, as ranges.
    fn scalar_ranges(len: usize, threads: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < len {
            let (scalar, end) = run_at(at, len, threads);
            if scalar {
                out.push((at, end));
            }
            at = end;
        }
        out
    }

    /// The ranges torch 2.13.0 computed in scalar code, measured on an AMD
    /// EPYC Zen 5 (AVX512 capability) with `torch.set_num_threads`, by
    /// where a 1-element `add(alpha=)` result appeared in a longer tensor.
    #[test]
    fn scalar_elements_are_where_torch_put_them() {
        assert_eq!(scalar_ranges(31, 1), [(0, 31)]);
        assert_eq!(scalar_ranges(32, 2), []);
        assert_eq!(scalar_ranges(255, 2), [(224, 255)]);
        assert_eq!(scalar_ranges(1025, 2), [(1024, 1025)]);
        assert_eq!(scalar_ranges(40000, 2), []);
        assert_eq!(scalar_ranges(65537, 1), [(65536, 65537)]);
        assert_eq!(scalar_ranges(65537, 2), [(32768, 32769)]);
        assert_eq!(
            scalar_ranges(65537, 3),
            [(21824, 21846), (43670, 43692), (65516, 65537)]
        );
        assert_eq!(scalar_ranges(100000, 2), [(49984, 50000), (99984, 100000)]);
        assert_eq!(scalar_ranges(100003, 2), [(49984, 50002), (99986, 100003)]);
        assert_eq!(
            scalar_ranges(100003, 3),
            [(33312, 33335), (66647, 66670), (99982, 100003)]
        );
    }
}
