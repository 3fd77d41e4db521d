//! Observability of the real `weir-broker` binary: JSON log lines for log shippers, and the
//! HTTP endpoints on the address `--http-listen` names.

use std::io::{Read, Write};
use std::net::TcpStream;

use weir_tests::process::{BrokerProcess, free_port};

fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP port");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
}

#[test]
fn json_logs_are_one_object_per_line_and_http_serves_on_the_given_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("broker.log");
    let http = free_port();
    let http_arg = format!("127.0.0.1:{http}");
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &log,
        &["--log-format", "json", "--http-listen", &http_arg],
    );
    assert!(get(http, "/ready").starts_with("HTTP/1.1 200"));
    let metrics = get(http, "/metrics");
    assert!(metrics.contains("weir_build_info{version="), "{metrics}");
    assert!(broker.stop(), "clean exit");

    let text = std::fs::read_to_string(&log).expect("read the log");
    // The harness writes a header line per run; everything the broker wrote is JSON.
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    assert!(lines.len() >= 3, "{text}");
    let mut listening = None;
    for line in &lines {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(object.get(field).is_some(), "no {field} in {line}");
        }
        if object["message"] == "weir-broker listening" {
            listening = Some(object);
        }
    }
    let listening = listening.expect("the listening line");
    assert_eq!(listening["addr"], broker.addr().to_string());
    assert_eq!(listening["level"], "INFO");
}
