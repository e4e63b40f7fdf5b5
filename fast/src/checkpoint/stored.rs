//! [`Stored`]: how each element type is stored in the binary formats.

use half::{bf16, f16};
use safetensors::Dtype;

use super::torch;
use crate::kernel::Element;

/// An element type as the checkpoint formats store it (`f32`, `f64`,
/// [`half::bf16`] and [`half::f16`]):
/// its safetensors dtype, its `torch.save` dtype, and little-endian bytes
/// read and written in place. Implemented by this crate only (every
/// [`Element`]), for the bound of [`save`](super::save) and
/// [`load`](super::load).
///
/// Every format holds all four: a state dict of `f64`, `bf16` or `f16` has
/// running averages of that dtype and, as PyTorch's, a float32 step
/// counter.
///
/// ```
/// use adadelta::checkpoint::{torch, Stored};
/// use adadelta::half::{bf16, f16};
/// assert_eq!(<f64 as Stored>::TORCH, torch::Dtype::Float64);
/// assert_eq!(<f64 as Stored>::TORCH.storage_class(), "DoubleStorage");
/// assert_eq!(<f32 as Stored>::SAFETENSORS, safetensors::Dtype::F32);
/// assert_eq!(<bf16 as Stored>::TORCH.storage_class(), "BFloat16Storage");
/// assert_eq!(<f16 as Stored>::TORCH.storage_class(), "HalfStorage");
/// assert_eq!(<bf16 as Stored>::SAFETENSORS, safetensors::Dtype::BF16);
/// assert_eq!(<f16 as Stored>::SAFETENSORS, safetensors::Dtype::F16);
/// ```
pub trait Stored: Element + bytemuck::Pod {
    /// The safetensors dtype (`F32`, `F64`, `BF16`, `F16`).
    const SAFETENSORS: Dtype;
    /// The dtype of a `torch.save` file (`torch.float32`, stored as
    /// `FloatStorage`; `torch.float64`, `DoubleStorage`; `torch.bfloat16`,
    /// `BFloat16Storage`; `torch.float16`, `HalfStorage`).
    const TORCH: torch::Dtype;
    #[doc(hidden)]
    /// The value whose little-endian bytes are `self`'s native bytes (the
    /// identity on a little-endian machine).
    fn le_to_native(self) -> Self;
    #[doc(hidden)]
    /// `self`'s little-endian bytes, appended to `out`.
    fn extend_le(self, out: &mut Vec<u8>);
}

macro_rules! stored {
    ($e:ident, $int:ident, $safetensors:ident, $torch:ident) => {
        impl Stored for $e {
            const SAFETENSORS: Dtype = Dtype::$safetensors;
            const TORCH: torch::Dtype = torch::Dtype::$torch;
            fn le_to_native(self) -> $e {
                $e::from_bits($int::from_le(self.to_bits()))
            }
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend(self.to_le_bytes())
            }
        }
    };
}

stored!(f32, u32, F32, Float32);
stored!(f64, u64, F64, Float64);
stored!(bf16, u16, BF16, BFloat16);
stored!(f16, u16, F16, Float16);
