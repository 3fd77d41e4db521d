//! Producer-id allocation for InitProducerId: unique for the life of the data directory.
//!
//! Ids are handed out from blocks of [`BLOCK`]. Before the first id of a block is given out,
//! the block's end is written durably to `<data-dir>/producer-ids`, atomically, as a checksummed
//! `i64` record (8-byte big-endian id and its CRC-32: `storage::files`, the same
//! 12 bytes as before the record moved there, so existing data directories open unchanged). After a restart allocation resumes at the stored
//! end, so no id is ever given twice even if the broker was killed mid-block: a reused id
//! would inherit another producer's sequence state and have its batches refused or, worse,
//! dropped as duplicates.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::storage::Disk;
use crate::storage::files::{decode_checksummed_i64, encode_checksummed_i64, write_atomically};

/// Ids reserved per durable write.
pub const BLOCK: i64 = 1000;
const FILE: &str = "producer-ids";

/// Why an id could not be allocated.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    /// The block file could not be read or written.
    #[error("producer id file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is damaged: refusing to guess, since a guess could reuse ids.
    #[error("producer id file {0} is damaged")]
    Damaged(PathBuf),
    /// All 2^63 ids are used.
    #[error("producer ids are exhausted")]
    Exhausted,
}

#[derive(Debug)]
struct Next {
    next: i64,
    block_end: i64,
}

/// Hands out producer ids.
#[derive(Debug)]
pub struct ProducerIds {
    dir: PathBuf,
    next: Mutex<Next>,
}

impl ProducerIds {
    /// Opens the allocator of `data_dir`.
    ///
    /// # Errors
    /// When the file cannot be read, or is damaged.
    pub fn open(data_dir: &Path) -> Result<Self, ProducerIdError> {
        let path = data_dir.join(FILE);
        let start = match std::fs::read(&path) {
            Ok(bytes) => decode_checksummed_i64(&bytes)
                .ok_or_else(|| ProducerIdError::Damaged(path.clone()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(ProducerIdError::Io { path, source }),
        };
        Ok(Self {
            dir: data_dir.to_path_buf(),
            next: Mutex::new(Next {
                next: start,
                block_end: start,
            }),
        })
    }

    /// A producer id never returned before by this data directory.
    ///
    /// # Errors
    /// When a new block cannot be made durable.
    pub fn allocate(&self, disk: &dyn Disk) -> Result<i64, ProducerIdError> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if next.next == next.block_end {
            let end = next
                .block_end
                .checked_add(BLOCK)
                .ok_or(ProducerIdError::Exhausted)?;
            write_atomically(&self.dir, FILE, &encode_checksummed_i64(end), disk).map_err(
                |source| ProducerIdError::Io {
                    path: self.dir.join(FILE),
                    source,
                },
            )?;
            next.block_end = end;
        }
        let id = next.next;
        next.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsDisk;

    #[test]
    fn ids_are_unique_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| ids.allocate(&OsDisk).unwrap()).collect();
        assert_eq!(first, [0, 1, 2]);
        drop(ids);
        let ids = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(ids.allocate(&OsDisk).unwrap(), BLOCK);
        for _ in 0..BLOCK {
            ids.allocate(&OsDisk).unwrap();
        }
        assert_eq!(ids.allocate(&OsDisk).unwrap(), 2 * BLOCK + 1);
    }

    /// A `producer-ids` file written before the record moved to `storage` (block end 1000:
    /// 8 bytes big-endian, then their CRC-32) still opens, and allocation resumes there.
    #[test]
    fn a_file_in_the_existing_format_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let stored = [0u8, 0, 0, 0, 0, 0, 3, 232, 224, 222, 230, 224];
        std::fs::write(dir.path().join(FILE), stored).unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(ids.allocate(&OsDisk).unwrap(), BLOCK);
        assert_eq!(
            std::fs::read(dir.path().join(FILE)).unwrap(),
            encode_checksummed_i64(2 * BLOCK)
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_restart_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"nonsense").unwrap();
        assert!(matches!(
            ProducerIds::open(dir.path()),
            Err(ProducerIdError::Damaged(_))
        ));
    }
}
