//! Never silent: a broker that dies or a topic that disappears while `weir consume` or
//! `weir produce` runs is told on stderr within seconds (the real weir-broker binary, killed
//! with SIGKILL and restarted), and the addresses that are not a broker each get their own
//! error: an unresolvable host, a bad port, a peer that speaks HTTP, an illegal topic name.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, StderrLines, seq, wait, weir_at};
use weir_tests::process::BrokerProcess;

/// How soon a failure must be told: "within a few seconds", with room for a loaded machine.
const TOLD_WITHIN: Duration = Duration::from_secs(15);

fn kill_int(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn a_broker_killed_under_a_consumer_is_told_and_the_consumer_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &[],
    );
    let bootstrap = broker.bootstrap();
    let out = common::run(weir_at(&bootstrap, &["produce", "-t", "t"]), b"1\n2\n");
    assert!(out.status.success(), "{out:?}");
    let mut child = weir_at(&bootstrap, &["consume", "-t", "t", "-o", "beginning"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let (first, stdout) = common::read_lines(child.stdout.take().expect("stdout"), 2);
    assert_eq!(first, "1\n2\n");
    let mut stderr = StderrLines::follow(child.stderr.take().expect("stderr"));

    broker.kill9();
    let line = stderr.expect("cannot reach a broker", TOLD_WITHIN);
    assert!(line.starts_with("warning: "), "{line}");
    assert!(line.contains("retrying"), "{line}");

    broker.restart();
    stderr.expect("the broker answers again", TOLD_WITHIN);
    let out = common::run(weir_at(&bootstrap, &["produce", "-t", "t"]), b"3\n");
    assert!(out.status.success(), "{out:?}");
    let (more, _stdout) = common::read_lines(stdout, 1);
    assert_eq!(more, "3\n", "the consumer carried on after the outage");
    kill_int(child.id());
    assert_eq!(wait(&mut child).code(), Some(0));
    broker.stop();
}

#[test]
fn a_broker_killed_under_a_producer_is_told_and_the_records_still_arrive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &[],
    );
    let bootstrap = broker.bootstrap();
    let mut child = weir_at(&bootstrap, &["produce", "-t", "p"])
        .spawn()
        .expect("spawn weir");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stderr = StderrLines::follow(child.stderr.take().expect("stderr"));
    stdin.write_all(b"before\n").expect("write");
    stdin.flush().expect("flush");
    let read_all = || {
        common::run(
            weir_at(&bootstrap, &["consume", "-t", "p", "-o", "beginning", "-e"]),
            b"",
        )
    };
    let deadline = std::time::Instant::now() + TOLD_WITHIN;
    while read_all().stdout != b"before\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the first line never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    broker.kill9();
    stdin.write_all(b"during\n").expect("write");
    stdin.flush().expect("flush");
    let line = stderr.expect("cannot reach a broker", TOLD_WITHIN);
    assert!(
        line.contains("retrying until each record's delivery timeout"),
        "{line}"
    );

    broker.restart();
    stderr.expect("the broker answers again", TOLD_WITHIN * 2);
    drop(stdin);
    assert_eq!(wait(&mut child).code(), Some(0), "{:?}", stderr.seen);
    assert_eq!(read_all().stdout, b"before\nduring\n");
    broker.stop();
}

#[test]
fn a_topic_deleted_under_a_consumer_ends_it_with_an_error() {
    let env = Env::start();
    env.ok(&["produce", "-t", "gone"], seq(3).as_bytes());
    let mut child = env
        .weir(&["consume", "-t", "gone", "-o", "beginning"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let (first, _stdout) = common::read_lines(child.stdout.take().expect("stdout"), 3);
    assert_eq!(first, seq(3));
    env.ok(&["topics", "delete", "gone"], b"");
    let mut stderr = StderrLines::follow(child.stderr.take().expect("stderr"));
    let line = stderr.expect("deleted", TOLD_WITHIN);
    assert_eq!(
        line,
        "error: topic gone was deleted while it was being read"
    );
    assert_eq!(wait(&mut child).code(), Some(1));
}

#[test]
fn a_topic_deleted_under_a_producer_is_told() {
    let env = Env::start_with(|c| c.auto_create_topics = false);
    env.ok(&["topics", "create", "vanishing"], b"");
    let mut child = env
        .weir(&["produce", "-t", "vanishing"])
        .spawn()
        .expect("spawn weir");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stderr = StderrLines::follow(child.stderr.take().expect("stderr"));
    stdin.write_all(b"kept\n").expect("write");
    stdin.flush().expect("flush");
    let deadline = std::time::Instant::now() + TOLD_WITHIN;
    while env.ok(&["topics", "describe", "vanishing"], b"") != "vanishing\t0\t0\t0\t0\t0\t0\t1\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the first line never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    env.ok(&["topics", "delete", "vanishing"], b"");
    stdin.write_all(b"lost\n").expect("write");
    stdin.flush().expect("flush");
    let line = stderr.expect("no longer exists", TOLD_WITHIN);
    assert_eq!(
        line,
        "warning: topic vanishing no longer exists; retrying until each record's delivery \
         timeout (120 s)"
    );
    // The delivery timeout is long: a second Ctrl-C leaves at once.
    kill_int(child.id());
    std::thread::sleep(Duration::from_millis(200));
    kill_int(child.id());
    assert_eq!(wait(&mut child).code(), Some(130));
}

/// Runs `weir -b bootstrap args` and returns its exit code and stderr.
fn fails(bootstrap: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = common::run(weir_at(bootstrap, args), b"");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_kind_of_bad_address_has_its_own_error() {
    // `.invalid` never resolves (RFC 6761).
    let (code, stderr) = fails("no-such-host.invalid:9092", &["topics", "list"]);
    assert_eq!(code, Some(3));
    assert!(
        stderr.starts_with("error: cannot resolve the broker address no-such-host.invalid:9092: ")
            && stderr.ends_with("— check the host name (set --bootstrap or WEIR_BOOTSTRAP)\n"),
        "{stderr}"
    );
    // Without a port, 9092 as kcat assumes.
    let (code, stderr) = fails("no-such-host.invalid", &["topics", "list"]);
    assert_eq!(code, Some(3));
    assert!(
        stderr.contains("cannot resolve the broker address no-such-host.invalid:9092"),
        "{stderr}"
    );
    let (code, stderr) = fails("localhost:kafka", &["topics", "list"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "error: bootstrap address `localhost:kafka`: expected host:port with a port from 1 to \
         65535\n"
    );

    // A web server where the broker was expected.
    let http = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = http.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for socket in http.incoming() {
            let Ok(mut socket) = socket else { break };
            let mut request = [0u8; 512];
            drop(socket.read(&mut request));
            drop(socket.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
        }
    });
    let (code, stderr) = fails(&addr, &["topics", "list"]);
    assert_eq!(code, Some(3));
    assert_eq!(
        stderr,
        format!(
            "error: the peer at {addr} does not speak the Kafka protocol (it answered like \
             HTTP: \"HTTP/1.1 400 Bad Request\") — is {addr} the broker's Kafka listener? (set \
             --bootstrap or WEIR_BOOTSTRAP)\n"
        )
    );
}

#[test]
fn illegal_topic_names_are_refused_before_anything_is_sent() {
    // Nothing listens there: the name is refused before any connection.
    for args in [
        &["produce", "-t", "my topic"][..],
        &["consume", "-t", "a/b", "-e"][..],
        &["topics", "create", ".."][..],
        &["topics", "describe", "ça"][..],
    ] {
        let (code, stderr) = fails("127.0.0.1:1", args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: invalid topic name "),
            "{args:?}: {stderr}"
        );
    }
    let (_, stderr) = fails("127.0.0.1:1", &["produce", "-t", "my topic"]);
    assert_eq!(
        stderr,
        "error: invalid topic name \"my topic\": it contains ' '; only ASCII letters, digits, \
         '.', '_' and '-' are allowed\n"
    );
}

#[test]
fn producing_to_a_missing_topic_names_the_broker_setting() {
    let env = Env::start_with(|c| c.auto_create_topics = false);
    let out = env.run(&["produce", "-t", "nope"], b"x\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: topic nope does not exist and the broker did not create it (its automatic \
         topic creation is off: auto_create_topics in Weir, auto.create.topics.enable in \
         Kafka); create it with `weir topics create nope`\n"
    );
}
