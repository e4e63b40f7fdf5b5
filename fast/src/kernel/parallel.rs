//! Splitting one step's work across threads: the elements of all jobs, in
//! order, are one index space that is halved recursively with
//! [`rayon::join`] until the pieces are short enough. A list of many small
//! tensors therefore parallelises exactly like one big tensor, and nothing
//! is allocated (the halves live on the stack of the joining threads).
//!
//! The update is element-wise, so where the cuts fall cannot change any bit;
//! cuts inside a tensor are rounded down to a multiple of 16 elements (one
//! 64-byte cache line, one AVX-512 vector) so that threads do not share lines.

use super::dispatch::Kernel;
use super::element::Element;
use super::job::{Job, Piece};

/// A contiguous run of the step's index space: the tail of one job (`head`),
/// whole jobs (`mid`), and the start of another (`tail`).
pub(crate) struct Span<'a, 'b, E: Element> {
    head: Option<Piece<'a, E>>,
    mid: &'a mut [Job<'b, E>],
    tail: Option<Piece<'a, E>>,
    len: usize,
}

/// Cut offset inside a piece of length `len`: `at` rounded down to a
/// multiple of 16.
fn cut(at: usize) -> usize {
    at & !15
}

impl<'a, 'b: 'a, E: Element> Span<'a, 'b, E> {
    pub fn new(jobs: &'a mut [Job<'b, E>]) -> Self {
        let len = jobs.iter().map(|j| j.param.len()).sum();
        Span {
            head: None,
            mid: jobs,
            tail: None,
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Runs `kernel` over every piece, in order, on this thread.
    pub fn run(self, kernel: Kernel<E>) {
        if let Some(h) = self.head {
            kernel.run(h);
        }
        for j in self.mid.iter_mut() {
            kernel.run(Piece::of(j));
        }
        if let Some(t) = self.tail {
            kernel.run(t);
        }
    }

    /// Splits near element `at` (0 < at < len) into two spans, both
    /// non-empty unless rounding leaves nothing to cut.
    fn split(self, at: usize) -> (Span<'a, 'b, E>, Span<'a, 'b, E>) {
        let Span {
            head,
            mid,
            tail,
            len,
        } = self;
        let head_len = head.as_ref().map_or(0, |h| h.len());
        if at < head_len {
            // Cut inside the head.
            let (a, b) = head.expect("at < head_len").split_at(cut(at));
            let la = a.len();
            return (
                Span {
                    head: Some(a),
                    mid: &mut [],
                    tail: None,
                    len: la,
                },
                Span {
                    head: Some(b),
                    mid,
                    tail,
                    len: len - la,
                },
            );
        }
        let mut rest = at - head_len;
        let mut consumed = head_len;
        let mut inside = None;
        for (i, j) in mid.iter().enumerate() {
            let n = j.param.len();
            if rest < n {
                inside = Some(i);
                break;
            }
            rest -= n;
            consumed += n;
        }
        if let Some(i) = inside {
            // Cut inside mid[i] (or exactly at its start when rest rounds to 0).
            let (left, right) = mid.split_at_mut(i);
            let (job, right) = right.split_first_mut().expect("i < mid.len()");
            let (a, b) = Piece::of(job).split_at(cut(rest));
            let la = consumed + a.len();
            return (
                Span {
                    head,
                    mid: left,
                    tail: Some(a),
                    len: la,
                },
                Span {
                    head: Some(b),
                    mid: right,
                    tail,
                    len: len - la,
                },
            );
        }
        // Cut inside the tail.
        let (a, b) = tail.expect("at < len").split_at(cut(rest));
        let la = consumed + a.len();
        (
            Span {
                head,
                mid,
                tail: Some(a),
                len: la,
            },
            Span {
                head: Some(b),
                mid: &mut [],
                tail: None,
                len: len - la,
            },
        )
    }
}

/// Runs `span` in the current rayon pool: halves it until the halves are at
/// most `leaf` elements long, the halves running through [`rayon::join`].
pub(crate) fn run<E: Element>(span: Span<'_, '_, E>, leaf: usize, kernel: Kernel<E>) {
    let len = span.len();
    if len <= leaf.max(32) {
        span.run(kernel);
        return;
    }
    let (a, b) = span.split(len / 2);
    if a.len() == 0 || b.len() == 0 {
        // Rounding left nothing to cut (only possible for tiny leaves).
        a.run(kernel);
        b.run(kernel);
        return;
    }
    rayon::join(|| run(a, leaf, kernel), || run(b, leaf, kernel));
}
