//! The zip layer of a `torch.save` file, through the `zip` crate: records
//! under one top folder (`<name>/data.pkl`, `<name>/data/<key>`, ...),
//! stored uncompressed, tensor data aligned to 64 bytes.

use std::fs::File;
use std::io::{Read, Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::checkpoint::{excerpt, CheckpointError};

/// The largest `data.pkl` read: a state dict of 400 tensors has a few tens
/// of kilobytes; a model of 100,000 tensors, about 15 MB.
pub(crate) const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// What `torch.save` writes in `.storage_alignment`, and aligns data to.
const ALIGNMENT: u16 = 64;

/// A `torch.save` archive open for reading.
pub(crate) struct Archive {
    zip: ZipArchive<File>,
    /// A second handle on the file, for reading records' data at their
    /// offsets from several threads at once.
    data: File,
    prefix: String,
    /// The file's length: no record may claim bytes beyond it.
    len: u64,
}

fn zip_err(e: zip::result::ZipError) -> CheckpointError {
    CheckpointError::format(format!("not a valid torch.save zip archive: {e}"))
}

impl Archive {
    /// Opens the archive and checks its layout: one top folder holding
    /// `data.pkl`; `byteorder`, if present, `little`.
    pub(crate) fn open(file: File) -> Result<Archive, CheckpointError> {
        let len = file.metadata()?.len();
        let data = file.try_clone()?;
        let zip = ZipArchive::new(file).map_err(zip_err)?;
        let mut prefix: Option<String> = None;
        for i in 0..zip.len() {
            let name = zip
                .name_for_index(i)
                .ok_or_else(|| CheckpointError::format("a zip entry without a name"))?
                .map_err(zip_err)?;
            let top = name.split('/').next().unwrap_or("");
            match &prefix {
                None => prefix = Some(top.to_string()),
                Some(p) if p == top => {}
                Some(p) => {
                    return Err(CheckpointError::format(format!(
                        "a torch.save archive keeps every record under one folder, but \
                         this one has {} and {}",
                        excerpt(p),
                        excerpt(top)
                    )))
                }
            }
        }
        let prefix = prefix.ok_or_else(|| CheckpointError::format("an empty zip archive"))?;
        let mut a = Archive {
            zip,
            data,
            prefix,
            len,
        };
        if a.zip.index_for_name(&a.name("data.pkl")).is_none() {
            return Err(CheckpointError::format(format!(
                "a zip archive without {}: not a torch.save file",
                a.name("data.pkl")
            )));
        }
        if let Some(order) = a.small_record("byteorder")? {
            if order != b"little" {
                return Err(CheckpointError::format(format!(
                    "byteorder is {:?}: only little-endian files are read",
                    excerpt(&String::from_utf8_lossy(&order))
                )));
            }
        }
        Ok(a)
    }

    fn name(&self, record: &str) -> String {
        format!("{}/{record}", self.prefix)
    }

    /// A record of at most 64 bytes (`byteorder`, `version`), if present.
    fn small_record(&mut self, record: &str) -> Result<Option<Vec<u8>>, CheckpointError> {
        let name = self.name(record);
        if self.zip.index_for_name(&name).is_none() {
            return Ok(None);
        }
        self.read_record(&name, 64).map(Some)
    }

    /// The whole of record `name`, refused beyond `limit` bytes; checked
    /// against its CRC-32.
    fn read_record(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, CheckpointError> {
        let mut f = self.zip.by_name(name).map_err(zip_err)?;
        if f.compression() != CompressionMethod::Stored {
            return Err(CheckpointError::format(format!(
                "{name} is compressed ({:?}); torch.save stores records uncompressed",
                f.compression()
            )));
        }
        if f.size() > limit {
            return Err(CheckpointError::format(format!(
                "{name} declares {} bytes, more than the {limit} read",
                f.size()
            )));
        }
        within(name, f.data_start(), f.size(), self.len)?;
        let mut out = Vec::new();
        out.try_reserve_exact(f.size() as usize)
            .map_err(|_| CheckpointError::format(format!("{name}: out of memory")))?;
        f.read_to_end(&mut out)
            .map_err(|e| CheckpointError::format(format!("{name}: {e}")))?;
        Ok(out)
    }

    /// `data.pkl`.
    pub(crate) fn pickle(&mut self) -> Result<Vec<u8>, CheckpointError> {
        let name = self.name("data.pkl");
        self.read_record(&name, MAX_PICKLE_BYTES)
    }

    /// The stored size of storage `key`'s record, in bytes.
    pub(crate) fn storage_size(&mut self, key: &str) -> Result<u64, CheckpointError> {
        Ok(self.storage_extent(key)?.size)
    }

    /// Where storage `key`'s data lies in the file, checked: present,
    /// stored, inside the file.
    pub(crate) fn storage_extent(&mut self, key: &str) -> Result<Extent, CheckpointError> {
        let name = self.name(&format!("data/{key}"));
        let f = self.zip.by_name(&name).map_err(|e| match e {
            zip::result::ZipError::FileNotFound => CheckpointError::format(format!(
                "the pickle names storage {}, but the archive has no {}",
                excerpt(key),
                excerpt(&name)
            )),
            e => zip_err(e),
        })?;
        if f.compression() != CompressionMethod::Stored {
            return Err(CheckpointError::format(format!(
                "{} is compressed; torch.save stores records uncompressed",
                excerpt(&name)
            )));
        }
        within(&name, f.data_start(), f.size(), self.len)?;
        let start = f.data_start().ok_or_else(|| {
            CheckpointError::format(format!("{}: no data offset", excerpt(&name)))
        })?;
        Ok(Extent {
            start,
            size: f.size(),
            crc: f.crc32(),
        })
    }

    /// Reads the data of `extent` (of storage `key`) into `out`, exactly its
    /// size, and checks its CRC-32. Takes `&self`: threads may read
    /// different records at once.
    pub(crate) fn read_extent(
        &self,
        key: &str,
        extent: &Extent,
        out: &mut [u8],
    ) -> Result<(), CheckpointError> {
        let fail = |msg: String| {
            CheckpointError::format(format!("{}/data/{}: {msg}", self.prefix, excerpt(key)))
        };
        if extent.size != out.len() as u64 {
            return Err(fail(format!(
                "holds {} bytes, but its tensor needs {}",
                extent.size,
                out.len()
            )));
        }
        read_at(&self.data, out, extent.start).map_err(|e| fail(e.to_string()))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(out);
        if crc.finalize() != extent.crc {
            return Err(fail(
                "its CRC-32 does not match: the file is corrupt".into(),
            ));
        }
        Ok(())
    }

    /// Reads storage `key`'s record, exactly `out.len()` bytes, into `out`,
    /// and checks its CRC-32.
    pub(crate) fn read_storage(
        &mut self,
        key: &str,
        out: &mut [u8],
    ) -> Result<(), CheckpointError> {
        let name = self.name(&format!("data/{key}"));
        let mut f = self.zip.by_name(&name).map_err(zip_err)?;
        if f.size() != out.len() as u64 {
            return Err(CheckpointError::format(format!(
                "{} holds {} bytes, but its tensor needs {}",
                excerpt(&name),
                f.size(),
                out.len()
            )));
        }
        let fail = |e: std::io::Error| CheckpointError::format(format!("{}: {e}", excerpt(&name)));
        f.read_exact(out).map_err(fail)?;
        // Reading at the end is what checks the CRC-32.
        let mut end = [0u8; 1];
        match f.read(&mut end).map_err(fail)? {
            0 => Ok(()),
            _ => Err(CheckpointError::format(format!(
                "{} is longer than it declares",
                excerpt(&name)
            ))),
        }
    }
}

/// Where a stored record's data lies: its offset in the file, its size,
/// and its CRC-32 from the central directory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Extent {
    start: u64,
    size: u64,
    crc: u32,
}

/// `out.len()` bytes of `file` from `offset`, without moving a shared file
/// position (so several threads may read at once).
#[cfg(unix)]
fn read_at(file: &File, out: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, out, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut out: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !out.is_empty() {
        match file.seek_read(out, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                out = &mut out[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Checks that a stored record of `size` bytes starting at `start` lies
/// inside a file of `len` bytes, before any memory is given to it.
fn within(name: &str, start: Option<u64>, size: u64, len: u64) -> Result<(), CheckpointError> {
    match start.and_then(|s| s.checked_add(size)) {
        Some(end) if end <= len => Ok(()),
        _ => Err(CheckpointError::format(format!(
            "{} declares {size} bytes, beyond the end of the {len}-byte file",
            excerpt(name)
        ))),
    }
}

/// A `torch.save` archive being written, record by record, in
/// `torch.save`'s order.
pub(crate) struct ArchiveWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    prefix: String,
}

fn write_err(e: zip::result::ZipError) -> CheckpointError {
    match e {
        zip::result::ZipError::Io(e) => CheckpointError::from(e),
        e => CheckpointError::format(format!("writing the zip archive: {e}")),
    }
}

impl<W: Write + Seek> ArchiveWriter<W> {
    /// A new archive whose records are under `prefix/`.
    pub(crate) fn new(inner: W, prefix: &str) -> Self {
        ArchiveWriter {
            zip: ZipWriter::new(inner),
            prefix: prefix.to_string(),
        }
    }

    fn start(&mut self, record: &str, len: usize) -> Result<(), CheckpointError> {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .with_alignment(ALIGNMENT)
            .large_file(len as u64 >= u64::from(u32::MAX));
        self.zip
            .start_file(format!("{}/{record}", self.prefix), options)
            .map_err(write_err)
    }

    /// A record holding `bytes`.
    pub(crate) fn record(&mut self, record: &str, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.start(record, bytes.len())?;
        self.zip.write_all(bytes)?;
        Ok(())
    }

    /// A record holding elements of `width` bytes, given as `native`, their
    /// bytes in this machine's order, written little-endian from the slice
    /// itself (no copy on a little-endian machine).
    pub(crate) fn record_elements(
        &mut self,
        record: &str,
        native: &[u8],
        width: usize,
    ) -> Result<(), CheckpointError> {
        self.start(record, native.len())?;
        if cfg!(target_endian = "little") {
            self.zip.write_all(native)?;
        } else {
            let mut buf = Vec::with_capacity(1 << 16);
            for chunk in native.chunks(width << 13) {
                buf.clear();
                buf.extend(chunk.chunks_exact(width).flat_map(|x| x.iter().rev()));
                self.zip.write_all(&buf)?;
            }
        }
        Ok(())
    }

    /// Writes the central directory; returns the writer.
    pub(crate) fn finish(self) -> Result<W, CheckpointError> {
        self.zip.finish().map_err(write_err)
    }
}
