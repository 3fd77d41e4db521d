//! `weir produce` and `weir consume` end to end: exact round trips, keys, headers, JSON,
//! start positions, partitions and their errors.

mod common;

use common::{Env, seq};

#[test]
fn a_hundred_thousand_lines_come_back_exactly() {
    let env = Env::start();
    let input = seq(100_000);
    let out = env.run(&["produce", "-t", "t"], input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.starts_with("produced 100000 records to t in "),
        "{summary}"
    );
    let back = env.ok(
        &[
            "consume",
            "-t",
            "t",
            "--offset",
            "beginning",
            "--count",
            "100000",
        ],
        b"",
    );
    assert!(back == input, "the records read back differ from the input");
}

#[test]
fn keys_headers_and_json_carry_everything() {
    let env = Env::start();
    env.ok(
        &[
            "produce",
            "-t",
            "kv",
            "-K",
            ":",
            "-H",
            "source=test",
            "-H",
            "n=1",
        ],
        b"k1:v1\nk2:v:2\nnokey\n",
    );
    let kv = env.ok(
        &[
            "consume",
            "-t",
            "kv",
            "--offset",
            "beginning",
            "-e",
            "--format",
            "kv",
            "-K",
            "=",
        ],
        b"",
    );
    assert_eq!(kv, "k1=v1\nk2=v:2\n=nokey\n");
    let json = env.ok(
        &[
            "consume",
            "-t",
            "kv",
            "--offset",
            "beginning",
            "-e",
            "--format",
            "json",
        ],
        b"",
    );
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["topic"], "kv");
    assert_eq!(lines[1]["partition"], 0);
    assert_eq!(lines[1]["offset"], 1);
    assert!(
        lines[1]["timestamp"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000)
    );
    assert_eq!(lines[1]["key"], "k2");
    assert_eq!(lines[1]["value"], "v:2");
    assert_eq!(lines[2]["key"], serde_json::Value::Null);

    // Several topics at once: each record says where it came from.
    env.ok(&["produce", "-t", "other"], b"elsewhere\n");
    let both = env.ok(
        &[
            "consume",
            "-t",
            "kv",
            "-t",
            "other",
            "--offset",
            "beginning",
            "-e",
            "--format",
            "json",
        ],
        b"",
    );
    let mut seen: Vec<(String, String)> = both
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["topic"].as_str().expect("topic").to_owned(),
                v["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("kv", "nokey"),
            ("kv", "v1"),
            ("kv", "v:2"),
            ("other", "elsewhere")
        ]
        .map(|(t, v)| (t.to_owned(), v.to_owned()))
    );
    assert_eq!(
        lines[0]["headers"],
        serde_json::json!([{"key": "source", "value": "test"}, {"key": "n", "value": "1"}])
    );
}

#[test]
fn start_positions_offsets_timestamps_and_partitions() {
    let env = Env::start();
    env.ok(&["topics", "create", "p", "--partitions", "2"], b"");
    env.ok(&["produce", "-t", "p", "-p", "1"], seq(10).as_bytes());
    let from_offset = env.ok(
        &["consume", "-t", "p", "-p", "1", "--offset", "7", "-e"],
        b"",
    );
    assert_eq!(from_offset, "8\n9\n10\n");
    // Partition 0 is empty; reading both partitions to their end gives partition 1's records.
    let all = env.ok(&["consume", "-t", "p", "--offset", "beginning", "-e"], b"");
    assert_eq!(all, seq(10));
    let at_end = env.ok(&["consume", "-t", "p", "--offset", "end", "-e"], b"");
    assert_eq!(at_end, "");
    // Every record was written after 1 s since 1970 and before the far future.
    let from_time = env.ok(&["consume", "-t", "p", "--offset", "@1000", "-e"], b"");
    assert_eq!(from_time, seq(10));
    let future = env.ok(
        &["consume", "-t", "p", "--offset", "@99999999999999", "-e"],
        b"",
    );
    assert_eq!(future, "");

    let out = env.run(&["consume", "-t", "p", "-p", "5", "-e"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: topic p has no partition 5 (it has 2)\n"
    );
    let out = env.run(&["produce", "-t", "p", "-p", "9"], b"x\n");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: topic p has no partition 9 (it has 2)\n"
    );
}

#[test]
fn a_record_the_producer_refuses_fails_the_run_with_exit_code_4() {
    let env = Env::start();
    // Larger than the producer's request size limit (1 MiB): refused, the others delivered.
    let mut input = b"before\n".to_vec();
    input.extend(vec![b'x'; 2 << 20]);
    input.extend(b"\nafter\n");
    let out = env.run(&["produce", "-t", "big"], &input);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("produced 2 records to big"), "{stderr}");
    assert!(
        stderr.contains("error: 1 of 3 records were not delivered: record for big not sent"),
        "{stderr}"
    );
    let back = env.ok(
        &["consume", "-t", "big", "--offset", "beginning", "-e"],
        b"",
    );
    assert_eq!(back, "before\nafter\n");
}

#[test]
fn lines_are_sent_as_they_come_and_ctrl_c_delivers_them_and_exits_130() {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let env = Env::start();
    env.ok(&["topics", "create", "live"], b"");
    let mut child = env
        .weir(&["produce", "-t", "live"])
        .spawn()
        .expect("spawn weir");
    let mut stdin = child.stdin.take().expect("stdin piped");
    stdin.write_all(b"one\ntwo\n").expect("write");
    stdin.flush().expect("flush");
    // The input stays open, as when typing: the lines must arrive without waiting for its end.
    let deadline = Instant::now() + common::RUN_TIMEOUT;
    loop {
        let got = env.ok(
            &["consume", "-t", "live", "--offset", "beginning", "-e"],
            b"",
        );
        if got == "one\ntwo\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lines never arrived: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert_eq!(common::wait(&mut child).code(), Some(130));
    drop(stdin);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        stderr.starts_with("produced 2 records to live in "),
        "{stderr}"
    );
}

#[test]
fn offsets_as_kcat_and_rpk_users_type_them() {
    let env = Env::start();
    env.ok(&["produce", "-t", "o"], seq(10).as_bytes());
    let read = |offset: &str| env.ok(&["consume", "-t", "o", "-o", offset, "-e"], b"");
    assert_eq!(read("-3"), "8\n9\n10\n", "the last 3 (kcat, rpk)");
    assert_eq!(read("-30"), seq(10), "fewer than asked: all of them");
    assert_eq!(read("+7"), "8\n9\n10\n", "7 after the start (rpk)");
    assert_eq!(read("oldest"), seq(10));
    assert_eq!(read("start"), seq(10));
    assert_eq!(read("newest"), "");
    assert_eq!(read("@-1h"), seq(10), "from an hour ago");
    assert_eq!(read("@2000-01-01"), seq(10));
    assert_eq!(read("@2000-01-01T00:00:00Z"), seq(10));
    assert_eq!(read("@2999-01-01T00:00:00+02:00"), "");

    // A start past the end says so instead of quietly waiting at the end.
    for (offset, asked) in [("20", "offset 20"), ("+11", "+11")] {
        let out = env.run(&["consume", "-t", "o", "-o", offset, "-e"], b"");
        assert_eq!(out.status.code(), Some(2), "{offset}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "error: o-0: {asked} is past the end: its records are at offsets 0 to 9 (10 \
                 records); --offset end waits for new ones\n"
            )
        );
    }
    let out = env.run(&["consume", "-t", "o", "-o", "@yesterday", "-e"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["consume", "-t", "o", "-g", "g", "-o", "-5"], b"");
    assert_eq!(out.status.code(), Some(2));

    // reset-offsets takes the same forms.
    env.ok(
        &["consume", "-t", "o", "-g", "g", "-o", "beginning", "-e"],
        b"",
    );
    let reset = |to: &str| {
        env.ok(
            &[
                "groups",
                "reset-offsets",
                "g",
                "-t",
                "o",
                "--to",
                to,
                "--dry-run",
            ],
            b"",
        )
    };
    assert_eq!(reset("-3"), "o\t0\t7\n");
    assert_eq!(reset("+2"), "o\t0\t2\n");
    assert_eq!(reset("+200"), "o\t0\t10\n");
    assert_eq!(reset("@2000-01-01"), "o\t0\t0\n");
}
