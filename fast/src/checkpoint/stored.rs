//! [`Stored`]: how each element type is stored in the binary formats.

use std::fs::File;

use safetensors::Dtype;

use super::{torch, CheckpointError, StateDictRef};
use crate::kernel::Element;
use crate::optimizer::StateDict;

/// An element type as the checkpoint formats store it (`f32` and `f64`):
/// its safetensors dtype, its `torch.save` storage class, and
/// little-endian bytes read and written in place. Implemented by this crate
/// only (every [`Element`]), for the bound of [`save`](super::save) and
/// [`load`](super::load).
///
/// The `torch.save` format holds float32 state only so far: a float64
/// state dict saved or loaded in it is a [`CheckpointError::Format`] that
/// says so; JSON and safetensors hold both.
///
/// ```
/// use adadelta::checkpoint::Stored;
/// assert_eq!(<f64 as Stored>::TORCH_STORAGE, "DoubleStorage");
/// ```
pub trait Stored: Element + bytemuck::Pod {
    /// The safetensors dtype (`F32`, `F64`).
    const SAFETENSORS: Dtype;
    /// The `torch` storage class of a `torch.save` file (`FloatStorage`,
    /// `DoubleStorage`).
    const TORCH_STORAGE: &'static str;
    #[doc(hidden)]
    /// The value whose little-endian bytes are `self`'s native bytes (the
    /// identity on a little-endian machine).
    fn le_to_native(self) -> Self;
    #[doc(hidden)]
    /// `self`'s little-endian bytes, appended to `out`.
    fn extend_le(self, out: &mut Vec<u8>);
    #[doc(hidden)]
    /// Writes `sd` in the `torch.save` format (the archive's top folder
    /// `archive`).
    fn write_torch(
        file: &mut File,
        sd: &StateDictRef<'_, Self>,
        archive: &str,
    ) -> Result<(), CheckpointError>;
    #[doc(hidden)]
    /// Reads a state dict from a `torch.save` file.
    fn read_torch(file: File) -> Result<StateDict<Self>, CheckpointError>;
}

/// Why a state dict of `T` has no `torch.save` form yet.
fn no_torch_form<T: Element>() -> CheckpointError {
    CheckpointError::format(format!(
        "the torch.save format is written and read for float32 state only, not {}; \
         save this state dict as .json or .safetensors",
        T::DTYPE
    ))
}

macro_rules! stored {
    ($e:ident, $int:ident, $safetensors:ident, $torch:literal, $write:expr, $read:expr) => {
        impl Stored for $e {
            const SAFETENSORS: Dtype = Dtype::$safetensors;
            const TORCH_STORAGE: &'static str = $torch;
            fn le_to_native(self) -> $e {
                $e::from_bits($int::from_le(self.to_bits()))
            }
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend(self.to_le_bytes())
            }
            fn write_torch(
                file: &mut File,
                sd: &StateDictRef<'_, $e>,
                archive: &str,
            ) -> Result<(), CheckpointError> {
                $write(file, sd, archive)
            }
            fn read_torch(file: File) -> Result<StateDict<$e>, CheckpointError> {
                $read(file)
            }
        }
    };
}

stored!(
    f32,
    u32,
    F32,
    "FloatStorage",
    torch::write_state_dict,
    torch::read_state_dict
);
stored!(
    f64,
    u64,
    F64,
    "DoubleStorage",
    |_: &mut File, _: &StateDictRef<'_, f64>, _: &str| Err(no_torch_form::<f64>()),
    |_: File| Err(no_torch_form::<f64>())
);
