//! The result of a `weir perf` run: throughput and latency percentiles with the settings that
//! produced them, as text for people or one JSON object for scripts (bench/run.sh).

use std::time::Duration;

use serde_json::{Value, json};

use super::histogram::Histogram;

/// One run's figures.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// `produce`, `consume` or `e2e`.
    pub(crate) scenario: &'static str,
    /// The settings, printed beside the figures (`record_size`, `acks`, ...).
    pub(crate) settings: Vec<(&'static str, Value)>,
    /// Records done.
    pub(crate) records: u64,
    /// Records that failed.
    pub(crate) failed: u64,
    /// Bytes of keys and values done.
    pub(crate) bytes: u64,
    /// Wall time of the run.
    pub(crate) elapsed: Duration,
    /// Latencies in µs (none for consume).
    pub(crate) latency: Option<Histogram>,
}

impl Report {
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as JSON (latencies in ms).
    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({
            "scenario": self.scenario,
            "records": self.records,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": self.elapsed.as_secs_f64(),
            "records_per_s": self.records_per_s(),
            "mb_per_s": self.mb_per_s(),
        });
        if let Some(h) = &self.latency {
            v["latency_ms"] = json!({
                "p50": ms(h.quantile(0.50)),
                "p99": ms(h.quantile(0.99)),
                "p999": ms(h.quantile(0.999)),
                "max": ms(h.max()),
                "samples": h.len(),
            });
        }
        for (k, value) in &self.settings {
            v[*k] = value.clone();
        }
        v
    }

    /// The report for people.
    pub(crate) fn to_text(&self) -> String {
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        let mut text = format!(
            "{}: {} records ({:.1} MB) in {:.2} s: {:.0} records/s, {:.1} MB/s{}\n  settings: {}\n",
            self.scenario,
            self.records,
            self.bytes as f64 / 1e6,
            self.elapsed.as_secs_f64(),
            self.records_per_s(),
            self.mb_per_s(),
            if self.failed > 0 {
                format!(" ({} FAILED)", self.failed)
            } else {
                String::new()
            },
            settings.join(" "),
        );
        if let Some(h) = &self.latency {
            text.push_str(&format!(
                "  latency ms: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
                ms(h.quantile(0.50)),
                ms(h.quantile(0.99)),
                ms(h.quantile(0.999)),
                ms(h.max()),
            ));
        }
        text
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_carry_the_same_figures() {
        let mut h = Histogram::default();
        for v in [10, 20, 30] {
            h.record(v);
        }
        let r = Report {
            scenario: "produce",
            settings: vec![("acks", json!("all")), ("record_size", json!(100))],
            records: 3,
            failed: 0,
            bytes: 2_000_000,
            elapsed: Duration::from_secs(2),
            latency: Some(h),
        };
        assert_eq!(
            r.to_text(),
            "produce: 3 records (2.0 MB) in 2.00 s: 2 records/s, 1.0 MB/s\n  \
             settings: acks=all record_size=100\n  \
             latency ms: p50 0.02  p99 0.03  p99.9 0.03  max 0.03\n"
        );
        let j = r.to_json();
        assert_eq!(j["mb_per_s"], json!(1.0));
        assert_eq!(j["latency_ms"]["max"], json!(0.03));
        assert_eq!(j["acks"], json!("all"));
    }
}
