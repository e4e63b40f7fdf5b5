//! The user guide: the pages of the crate's `docs/` folder, rendered here so
//! that docs.rs shows them. Their examples run as doc tests.
//!
//! * [Coming from PyTorch](coming_from_pytorch): every `torch.optim.Adadelta`
//!   call and its counterpart here, what differs and why, and moving
//!   checkpoints between PyTorch and Rust.
//! * [Numerics](numerics): PyTorch's op order and rounding, the two
//!   numerics, libtorch's square root and the error bound of one step.
//! * [Performance](performance): the kernel and the checkpoint formats
//!   against PyTorch, measured.
//! * [Reliability](reliability): each guarantee (typed errors that change
//!   nothing, atomic checkpoints, fuzzed loaders, memory safety) and the
//!   test that shows it.
//! * [Architecture](architecture): the crates of the project and how data
//!   flows through the differential tests.
//!
//! ```
//! // The guide is prose; the API it describes starts at the crate root.
//! use adadelta::{Adadelta, Param};
//! let opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
//! assert_eq!(opt.param_groups().len(), 1);
//! # Ok::<(), adadelta::Error>(())
//! ```

// The pages link to each other and to the API with reference-style links
// (`[text][label]`) whose definitions, at the end of each page, are paths
// that work on GitHub. This crate's definitions come first in the rendered
// page, and the first definition of a label wins (CommonMark), so in
// rustdoc the same links lead to the guide's modules and the API items.
macro_rules! links {
    () => {
        "[architecture]: crate::guide::architecture\n\
         [coming-from-pytorch]: crate::guide::coming_from_pytorch\n\
         [numerics]: crate::guide::numerics\n\
         [performance]: crate::guide::performance\n\
         [reliability]: crate::guide::reliability\n\
         [report]: https://github.com/adadelta-rs/adadelta-rs/blob/main/docs/report.md\n\
         [replay]: https://github.com/adadelta-rs/adadelta-rs/blob/main/docs/replay.md\n\
         [Param]: crate::Param\n\n"
    };
}

#[doc = links!()]
#[doc = include_str!("../docs/coming-from-pytorch.md")]
pub mod coming_from_pytorch {}

#[doc = links!()]
#[doc = include_str!("../docs/numerics.md")]
pub mod numerics {}

#[doc = links!()]
#[doc = include_str!("../docs/performance.md")]
pub mod performance {}

#[doc = links!()]
#[doc = include_str!("../docs/reliability.md")]
pub mod reliability {}

#[doc = links!()]
#[doc = include_str!("../docs/architecture.md")]
pub mod architecture {}
