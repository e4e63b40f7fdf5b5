//! placeholder
pub use tch;
pub use adadelta_reference;
