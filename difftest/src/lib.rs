//! Differential tests of adadelta-rs: the fast crate, the MPFR reference and
//! libtorch (through `tch`) run the same cases and are compared bit for bit
//! and, against high precision, in ULPs with derived bounds.
//!
//! * [`cli`]: what the `report` and `replay` commands share at their edges;
//! * [`case`]: scenarios and trajectories, and their bit-exact JSON form;
//! * [`implementations`]: running a case through each implementation;
//! * [`libtorch`]: Adadelta from libtorch ops, bit-identical to `torch.optim.Adadelta`;
//! * [`pytorch`]: running real `torch.optim.Adadelta` in the project's venv;
//! * [`fixture`]: golden fixtures from real PyTorch, for replay;
//! * [`dtype`]: the parameter dtypes, float32, float64, bfloat16 and float16, and what the rest needs of them;
//! * [`bound`]: the error bound of one step, in binary32, binary64, bfloat16 or binary16;
//! * [`accuracy`]: per-step error against the high-precision reference;
//! * [`report`]: the differential report (the `report` binary);
//! * [`scenario`]: user scenarios for the `replay` binary;
//! * [`strategies`]: proptest strategies shared by the tests;
//! * [`suite`]: the report's embedded default cases and random case generation.

pub mod accuracy;
pub mod bound;
pub mod case;
pub mod cli;
pub mod dtype;
pub mod fixture;
pub mod implementations;
pub mod libtorch;
pub mod pytorch;
pub mod report;
pub mod scenario;
pub mod strategies;
pub mod suite;
