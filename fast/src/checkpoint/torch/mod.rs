//! PyTorch's `torch.save` format (work in progress in this session).

use std::fs::File;
use std::path::Path;

use super::{CheckpointError, StateDictRef};
use crate::optimizer::StateDict;

/// The archive's top folder, as `torch.save` names it: the file name
/// without its extension.
pub(crate) fn archive_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("archive")
        .to_string()
}

/// Whether `head` starts as a legacy (pre-zip) torch.save file does: a
/// pickled magic number.
pub(crate) fn is_legacy(head: &[u8]) -> bool {
    head.starts_with(&[0x80, 0x02, 0x8a, 0x0a])
}

/// Writes `sd` in the torch.save format.
pub(crate) fn write_state_dict(
    _file: &mut File,
    _sd: &StateDictRef<'_>,
    _archive: &str,
) -> Result<(), CheckpointError> {
    Err(CheckpointError::format("torch: not written yet"))
}

/// Reads a state dict in the torch.save format.
pub(crate) fn read_state_dict(_file: File) -> Result<StateDict, CheckpointError> {
    Err(CheckpointError::format("torch: not written yet"))
}
