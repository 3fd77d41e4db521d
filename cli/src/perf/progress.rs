//! The live progress line of `weir perf`: records done out of the total, the rate and MB/s,
//! drawn on stderr by `indicatif` four times a second, only when stderr is a terminal
//! (indicatif hides the bar otherwise: a pipe or a log file gets nothing but the final
//! report).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tokio::task::JoinHandle;

/// How often the line is redrawn.
const REDRAWS_PER_S: u8 = 4;

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

/// The bar and the task that moves it from the counters.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts drawing `label` progress towards `total` records (when stderr is a terminal).
    pub(crate) fn start(label: &'static str, total: u64, counters: Arc<Counters>) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(total),
            ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_S),
        );
        let rates = {
            let counters = Arc::clone(&counters);
            move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let bytes = counters.bytes.load(Ordering::Relaxed);
                // Nothing to do if the line refuses a write: the next redraw tries again.
                let _redrawn_next_time = out.write_str(&rates(state.pos(), bytes, state.elapsed()));
            }
        };
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|err| unreachable!("the template is constant: {err}"))
            .progress_chars("# ")
            .with_key("rates", rates);
        bar.set_style(style);
        bar.set_prefix(label);
        let task = tokio::spawn({
            let bar = bar.clone();
            async move {
                let mut tick =
                    tokio::time::interval(Duration::from_millis(1000 / u64::from(REDRAWS_PER_S)));
                loop {
                    tick.tick().await;
                    bar.set_position(counters.records());
                }
            }
        });
        Self { bar, task }
    }

    /// Stops drawing and clears the line.
    pub(crate) fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

/// The line: label, a 30-character bar, records done of the total, then the rates.
const TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} records  {rates}";

/// `500 records/s  1.0 MB/s` for `records` and `bytes` done in `elapsed`.
fn rates(records: u64, bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    format!(
        "{:.0} records/s  {:.1} MB/s",
        records as f64 / seconds,
        bytes as f64 / seconds / 1e6
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rates_are_records_and_megabytes_per_second() {
        assert_eq!(
            rates(500, 1_000_000, Duration::from_secs(1)),
            "500 records/s  1.0 MB/s"
        );
        assert_eq!(rates(0, 0, Duration::ZERO), "0 records/s  0.0 MB/s");
    }

    #[tokio::test]
    async fn the_bar_follows_the_counters() {
        let counters = Arc::new(Counters::default());
        let progress = Progress::start("produce", 1000, Arc::clone(&counters));
        counters.add(500, 1_000_000);
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Hidden when stderr is not a terminal (as under the test harness), yet moved.
        assert_eq!(progress.bar.position(), 500);
        assert_eq!(progress.bar.length(), Some(1000));
        progress.finish();
    }
}
