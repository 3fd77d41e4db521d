//! The process's own figures at each scrape: resident memory, open files, uptime, build.
//!
//! Read from `/proc/self` (Linux); on a system without it the memory and file figures are
//! left out rather than reported as zero.

use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;

/// Page size for `/proc/self/statm`, whose figures are in pages.
fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// Resident set size in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// File descriptors open now.
fn open_files() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Process figures.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    started: Instant,
}

impl ProcessCollector {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
        }
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    gauge.encode(metric)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(bytes) = resident_bytes() {
            gauge(
                &mut encoder,
                "weir_process_resident_memory_bytes",
                "Resident memory of the broker process",
                bytes as f64,
            )?;
        }
        if let Some(files) = open_files() {
            gauge(
                &mut encoder,
                "weir_process_open_files",
                "File descriptors the broker process has open",
                files as f64,
            )?;
        }
        gauge(
            &mut encoder,
            "weir_uptime_seconds",
            "Time since the broker process started its metrics",
            self.started.elapsed().as_secs_f64(),
        )?;
        let info = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        });
        let metric = encoder.encode_descriptor(
            "weir_build",
            "The broker's version",
            None,
            MetricType::Info,
        )?;
        info.encode(metric)
    }
}
