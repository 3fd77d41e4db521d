//! Disk metrics: a [`Disk`] that times every sync and counts writes and failures, wrapped
//! around the broker's disk by its assembly, so every store (logs, offsets, producer ids)
//! is measured without knowing it.
//!
//! Invariant: it forwards every call unchanged and returns the inner disk's result as is;
//! it only observes.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::storage::Disk;

/// The disk figures, shared by every [`MeteredDisk`].
#[derive(Debug, Clone)]
pub(crate) struct DiskMetrics {
    fsync: Histogram,
    dir_sync: Histogram,
    append_to_durable: Histogram,
    written: Counter,
    errors: Counter,
}

impl DiskMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        // 50 µs to about 3.3 s, doubling: a page-cache fdatasync on NVMe is tens of
        // microseconds, a loaded disk's hundreds of milliseconds.
        let buckets = || exponential_buckets(0.00005, 2.0, 17);
        let metrics = Self {
            fsync: Histogram::new(buckets()),
            dir_sync: Histogram::new(buckets()),
            append_to_durable: Histogram::new(buckets()),
            written: Counter::default(),
            errors: Counter::default(),
        };
        let weir = registry.sub_registry_with_prefix("weir");
        weir.register_with_unit(
            "fsync_duration",
            "Time of each fdatasync of a store file (logs, offsets)",
            Unit::Seconds,
            metrics.fsync.clone(),
        );
        weir.register_with_unit(
            "dir_sync_duration",
            "Time of each fsync of a directory (segment rolls, file replacements)",
            Unit::Seconds,
            metrics.dir_sync.clone(),
        );
        weir.register_with_unit(
            "append_to_durable",
            "Time from a produced batch's append to its sync, for the produces that wait \
             (acks=all, or every ack with --flush always)",
            Unit::Seconds,
            metrics.append_to_durable.clone(),
        );
        weir.register_with_unit(
            "disk_written",
            "Bytes written with pwrite by the stores",
            Unit::Bytes,
            metrics.written.clone(),
        );
        weir.register(
            "disk_errors",
            "Failed allocations, writes and syncs (a failed sync stops its log)",
            metrics.errors.clone(),
        );
        metrics
    }

    /// A produced batch became durable `took` after it was appended.
    pub(crate) fn durable_after(&self, took: std::time::Duration) {
        self.append_to_durable.observe(took.as_secs_f64());
    }

    /// `inner`, measured.
    pub(crate) fn meter(&self, inner: Arc<dyn Disk>) -> Arc<dyn Disk> {
        Arc::new(MeteredDisk {
            inner,
            metrics: self.clone(),
        })
    }
}

/// A disk that measures the one it wraps.
#[derive(Debug)]
struct MeteredDisk {
    inner: Arc<dyn Disk>,
    metrics: DiskMetrics,
}

impl MeteredDisk {
    fn counted<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if result.is_err() {
            self.metrics.errors.inc();
        }
        result
    }
}

impl Disk for MeteredDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        self.counted(self.inner.allocate(file, len))
    }

    fn write_all_at(&self, file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        let result = self.counted(self.inner.write_all_at(file, parts, offset));
        if result.is_ok() {
            let bytes: usize = parts.iter().map(|p| p.len()).sum();
            self.metrics.written.inc_by(bytes as u64);
        }
        result
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        let started = Instant::now();
        let result = self.counted(self.inner.sync_data(file));
        self.metrics.fsync.observe(started.elapsed().as_secs_f64());
        result
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let started = Instant::now();
        let result = self.counted(self.inner.sync_dir(dir));
        self.metrics
            .dir_sync
            .observe(started.elapsed().as_secs_f64());
        result
    }
}
