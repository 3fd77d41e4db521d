//! `weir perf`: each mode really moves the records it reports, and `--json` is one object.

mod common;

use common::Env;
use serde_json::Value;

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn perf_produce_consume_and_e2e_report_what_they_moved() {
    let env = Env::start();
    let produced = json(&env.ok(
        &[
            "perf",
            "produce",
            "-t",
            "bench",
            "--records",
            "3000",
            "--record-size",
            "100",
            "--partitions",
            "3",
            "--producers",
            "2",
            "--acks",
            "1",
            "--json",
        ],
        b"",
    ));
    assert_eq!(produced["records"], 3000);
    assert_eq!(produced["failed"], 0);
    assert_eq!(produced["bytes"], 300_000);
    assert_eq!(produced["partitions"], 3);
    assert_eq!(produced["latency_ms"]["samples"], 3000);
    let p50 = produced["latency_ms"]["p50"].as_f64().expect("p50");
    let max = produced["latency_ms"]["max"].as_f64().expect("max");
    assert!(p50 > 0.0 && p50 <= max, "{produced}");

    // The records are really there: 1000 per partition.
    assert_eq!(
        env.ok(&["topics", "describe", "bench"], b""),
        "bench\t0\t0\t0\t0\t0\t0\t1000\nbench\t1\t0\t0\t0\t0\t0\t1000\nbench\t2\t0\t0\t0\t0\t0\t1000\n"
    );

    let consumed = json(&env.ok(&["perf", "consume", "-t", "bench", "--json"], b""));
    assert_eq!(consumed["records"], 3000);
    assert_eq!(consumed["bytes"], 300_000);
    let grouped = json(&env.ok(
        &[
            "perf",
            "consume",
            "-t",
            "bench",
            "--consumers",
            "2",
            "--json",
        ],
        b"",
    ));
    assert!(
        grouped["records"].as_u64().is_some_and(|n| n >= 3000),
        "{grouped}"
    );

    let e2e = json(&env.ok(
        &[
            "perf",
            "e2e",
            "-t",
            "e2e",
            "--records",
            "500",
            "--throughput",
            "1000",
            "--json",
        ],
        b"",
    ));
    assert_eq!(e2e["records"], 500);
    assert_eq!(e2e["failed"], 0);
    assert_eq!(e2e["latency_ms"]["samples"], 500);

    let text = env.ok(&["perf", "produce", "-t", "bench", "--records", "10"], b"");
    assert!(
        text.starts_with("produce: 10 records (0.0 MB) in "),
        "{text}"
    );
    assert!(text.contains("latency ms: p50 "), "{text}");
}
