//! The floor below [`crate::log`], the committed-offsets store and the producer-id file: the
//! durability machinery they share.
//!
//! Owns:
//! - [`disk`]: the fallible file operations (allocate, write, sync) behind the [`Disk`] trait,
//!   [`OsDisk`] and the failure-injecting [`FaultyDisk`], and what counts as "disk full";
//! - `files`: atomic small-file writes, the checksummed 12-byte integer record (recovery
//!   point, producer-id block) and 20-digit generation file names;
//! - `flusher`: the sync threads shared by everything that syncs ([`Flusher`], over the small
//!   `Syncable` trait), with group commit and interval sweeps;
//! - `durability`: the durable watermark with fail-stop (`Durability`) that async callers
//!   await.
//!
//! It does not know what is stored: no offsets, batches, groups or producers, and it imports
//! none of `log`, `groups`, `producers` or `server` (they import it). What a file holds, when to
//! sync it and what a sync covers stay with the owner of the file.
//!
//! Invariants:
//! - no `fdatasync` runs on the async runtime: syncs run on [`Flusher`] threads (or on a caller
//!   that chose to block), and async callers await `Durability::wait`;
//! - a watermark only moves forward, and once failed it stays failed with the first error
//!   (fail-stop): nothing is reported durable by a sync that did not complete;
//! - a small file written by `files::write_atomically` is, after a crash, either the old file
//!   or the new one, never a mix.

pub mod disk;
pub(crate) mod durability;
pub(crate) mod files;
pub(crate) mod flusher;

pub(crate) use disk::is_disk_full;
pub use disk::{Disk, FaultyDisk, OsDisk};
pub(crate) use durability::{Durability, Unreached};
pub use flusher::Flusher;
pub(crate) use flusher::Syncable;
