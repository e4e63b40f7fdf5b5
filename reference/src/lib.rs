//! placeholder
pub use rug;
