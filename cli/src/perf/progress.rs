//! The live progress line of `weir perf`: records done out of the total, the rate and MB/s,
//! redrawn on stderr four times a second, only when stderr is a terminal (a pipe or a log
//! file gets nothing but the final report).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Counters the workers bump and the progress line reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records done (acknowledged or received).
    pub(crate) records: AtomicU64,
    /// Their bytes.
    pub(crate) bytes: AtomicU64,
    /// Records that failed.
    pub(crate) failed: AtomicU64,
}

impl Counters {
    /// Counts `n` records of `bytes` bytes in all.
    pub(crate) fn add(&self, n: u64, bytes: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records done so far.
    pub(crate) fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }
}

/// The drawing task.
#[derive(Debug)]
pub(crate) struct Progress {
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing `label` progress towards `total` records (when stderr is a terminal).
    pub(crate) fn start(label: &'static str, total: u64, counters: Arc<Counters>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { task: None };
        }
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let line = line(label, total, &counters, started.elapsed());
                let mut err = std::io::stderr().lock();
                // A progress line that cannot be drawn is not worth failing the run for.
                drop(write!(err, "\r\x1b[2K{line}"));
                drop(err.flush());
            }
        });
        Self { task: Some(task) }
    }

    /// Stops drawing and clears the line.
    pub(crate) fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            drop(write!(std::io::stderr(), "\r\x1b[2K"));
        }
    }
}

fn line(label: &str, total: u64, c: &Counters, elapsed: Duration) -> String {
    let done = c.records();
    let seconds = elapsed.as_secs_f64().max(1e-9);
    const WIDTH: usize = 30;
    let filled = (done.min(total).saturating_mul(WIDTH as u64))
        .checked_div(total)
        .and_then(|f| usize::try_from(f).ok())
        .unwrap_or(0);
    format!(
        "{label} [{}{}] {done}/{total} records  {:.0} records/s  {:.1} MB/s",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled),
        done as f64 / seconds,
        c.bytes.load(Ordering::Relaxed) as f64 / seconds / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_the_share_done_and_the_rates() {
        let c = Counters::default();
        c.add(500, 1_000_000);
        assert_eq!(
            line("produce", 1000, &c, Duration::from_secs(1)),
            "produce [###############               ] 500/1000 records  500 records/s  1.0 MB/s"
        );
    }
}
