//! The data directory's lock: one broker process per data directory.
//!
//! Owns `<data-dir>/.lock` (Kafka's name). A broker takes an exclusive advisory `flock` on it
//! before reading anything else in the directory and holds it until it has stopped (the lock
//! goes with the open file, so a crash or `kill -9` releases it too). A second broker on the
//! same directory, in another process or in the same one, finds the lock taken and refuses to
//! start: two brokers recovering and appending to the same memory-mapped segments would
//! overwrite each other's acknowledged records.
//!
//! The file holds the holder's process id, for the refusal message only: the lock, not the
//! file's content or existence, is what counts (a stale file left by a crash is harmless).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

/// Name of the lock file inside the data directory.
pub(crate) const LOCK_FILE: &str = ".lock";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirLockError {
    /// Another broker holds the lock.
    #[error(
        "data directory {dir} is in use by another weir-broker ({holder}); stop that one first \
         or give this one another --data-dir"
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// `pid N` as written by the holder, or a note that it is unknown.
        holder: String,
    },
    /// Creating, opening or locking the lock file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The lock file or data directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it (closing the file) releases it.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Kept open for the lifetime of the broker: the `flock` belongs to this open file.
    _file: File,
}

impl DirLock {
    /// Creates `data_dir` if needed and takes its lock, without waiting.
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self, DirLockError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| DirLockError::Io { op, path, source }
        };
        std::fs::create_dir_all(data_dir).map_err(io("create data directory", data_dir))?;
        let path = data_dir.join(LOCK_FILE);
        // Not truncated on open: until the lock is ours, the content is the holder's pid.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open lock file", &path))?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let holder = match file.read_to_string(&mut text) {
                    Ok(_) if !text.trim().is_empty() => format!("pid {}", text.trim()),
                    // The holder is between taking the lock and writing its pid.
                    Ok(_) => "pid not yet written".to_owned(),
                    Err(err) => format!("pid unreadable: {err}"),
                };
                return Err(DirLockError::InUse {
                    dir: data_dir.to_path_buf(),
                    holder,
                });
            }
            Err(errno) => return Err(io("lock", &path)(errno.into())),
        }
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{pid}"))
            .map_err(io("write pid to lock file", &path))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DirLock::acquire(&data).unwrap();
        let text = std::fs::read_to_string(data.join(LOCK_FILE)).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock locks belong to open files: a second open in the same process conflicts.
        match DirLock::acquire(&data) {
            Err(err @ DirLockError::InUse { .. }) => {
                let message = err.to_string();
                assert!(message.contains(&data.display().to_string()), "{message}");
                assert!(
                    message.contains(&format!("pid {}", std::process::id())),
                    "{message}"
                );
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        // The refused attempt did not erase the holder's pid.
        assert_eq!(
            std::fs::read_to_string(data.join(LOCK_FILE))
                .unwrap()
                .trim(),
            std::process::id().to_string()
        );
        drop(first);
        let _again = DirLock::acquire(&data).unwrap();
    }
}
