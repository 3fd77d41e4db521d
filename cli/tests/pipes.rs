//! Output that stops early: a reader that closes stdout (`| head -3`) ends every command
//! quietly with exit code 0, and a group member then commits only the records whose lines
//! the reader took. Also the limits around output: a partition that does not exist in
//! `reset-offsets`, and records larger than the default request size.

mod common;

use std::io::Read;
use std::process::{ChildStdout, Stdio};

use common::{Env, seq, wait};

/// Reads `stdout` one byte at a time until `lines` newlines, then closes it, as a reader
/// that stops early does (taking nothing more than it printed).
fn take_lines_and_close(mut stdout: ChildStdout, lines: usize) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while seen.iter().filter(|b| **b == b'\n').count() < lines {
        match stdout.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => seen.push(byte[0]),
            Err(err) => panic!("reading weir's stdout: {err}"),
        }
    }
    drop(stdout);
    String::from_utf8(seen).expect("utf-8")
}

/// The committed offset of `group` on partition 0 of `topic`.
fn committed(env: &Env, group: &str, topic: &str) -> i64 {
    let described = env.ok(&["groups", "describe", group], b"");
    let prefix = format!("offset\t{topic}\t0\t");
    let line = described
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no committed offset in {described:?}"));
    line[prefix.len()..]
        .split('\t')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"))
}

/// Runs `weir consume -g group` over `records` records, reads 3 lines and closes the pipe.
fn consume_three_and_close(records: u64, group: &str) {
    let env = Env::start();
    let topic = format!("t{records}");
    env.ok(&["produce", "-t", &topic], seq(records).as_bytes());
    let mut child = env
        .weir(&[
            "consume",
            "-t",
            &topic,
            "-g",
            group,
            "--offset",
            "beginning",
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let read = take_lines_and_close(child.stdout.take().expect("stdout piped"), 3);
    assert_eq!(read, "1\n2\n3\n");
    let status = wait(&mut child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "a closed stdout is a quiet stop");
    assert_eq!(committed(&env, group, &topic), 3);
}

#[test]
fn a_reader_that_closes_after_three_lines_gets_three_committed_while_weir_writes() {
    // More than a pipe holds: weir is blocked writing when the reader closes.
    consume_three_and_close(50_000, "busy");
}

#[test]
fn a_reader_that_closes_after_three_lines_gets_three_committed_while_weir_waits() {
    // Everything fits in the pipe: weir waits for records and must notice the closed pipe
    // without writing.
    consume_three_and_close(10, "idle");
}

/// Runs `weir args` with the read end of its stdout already closed.
fn with_stdout_closed(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mut child = env
        .weir(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn weir");
    drop(child.stdout.take());
    let status = wait(&mut child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), stderr)
}

#[test]
fn every_command_stops_quietly_when_stdout_is_closed() {
    let env = Env::start();
    env.ok(&["produce", "-t", "closed"], seq(10).as_bytes());
    env.ok(
        &[
            "consume",
            "-t",
            "closed",
            "-g",
            "cg",
            "--offset",
            "beginning",
            "-e",
        ],
        b"",
    );
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"][..],
        &["topics", "list"][..],
        &["topics", "describe", "closed"][..],
        &["groups", "list"][..],
        &["groups", "describe", "cg"][..],
        &["consume", "-t", "closed", "--offset", "beginning", "-e"][..],
        &[
            "perf",
            "produce",
            "-t",
            "perf-closed",
            "-n",
            "10",
            "-s",
            "10",
        ][..],
    ] {
        let (code, stderr) = with_stdout_closed(&env, args);
        assert_eq!(code, Some(0), "weir {args:?}: {stderr}");
        assert_eq!(stderr, "", "weir {args:?}");
    }
}

#[test]
fn reset_offsets_of_a_partition_that_does_not_exist_is_an_error() {
    let env = Env::start();
    env.ok(&["produce", "-t", "one"], seq(5).as_bytes());
    env.ok(
        &[
            "consume",
            "-t",
            "one",
            "-g",
            "g1",
            "--offset",
            "beginning",
            "-e",
        ],
        b"",
    );
    let out = env.run(
        &[
            "groups",
            "reset-offsets",
            "g1",
            "-t",
            "one",
            "-p",
            "7",
            "--to",
            "earliest",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: topic one has no partition 7 (it has 1)\n"
    );
    assert_eq!(out.stdout, b"");
    assert_eq!(committed(&env, "g1", "one"), 5, "nothing was reset");
}

#[test]
fn max_record_bytes_raises_the_largest_record_produced() {
    // The broker's own limit (message.max.bytes, 1 MiB by default as in Kafka) is raised too.
    let env = Env::start_with(|c| c.message_max_bytes = 4 << 20);
    let mut big = vec![b'x'; 2 << 20];
    big.push(b'\n');
    let refused = env.run(&["produce", "-t", "big"], &big);
    assert_eq!(refused.status.code(), Some(4), "the default is 1 MiB");
    let out = env.run(
        &["produce", "-t", "big", "--max-record-bytes", "3000000"],
        &big,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = env.ok(
        &["consume", "-t", "big", "--offset", "beginning", "-e"],
        b"",
    );
    assert!(back.as_bytes() == big, "the record came back changed");
}
