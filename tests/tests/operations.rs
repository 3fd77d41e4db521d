//! Start-up and process-level promises of the real `weir-broker` binary: one broker per data
//! directory (the `.lock`), impossible settings refused before anything is touched, and a
//! closed stderr that costs log lines but never a request or a clean shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use weir_broker::{Broker, BrokerConfig, BrokerError, DirLockError};
use weir_tests::process::{BrokerProcess, START_TIMEOUT, broker_binary, free_port};
use weir_tests::{Client, TestBroker, batch, stored};

/// Runs `child` to its exit; if it is still running after `wait` (it started serving when it
/// should have refused), kills it and returns `None`.
fn exit_within(child: &mut Child, wait: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(status) = child.try_wait().expect("wait for weir-broker") {
            return Some(status);
        }
        if Instant::now() > deadline {
            child.kill().expect("kill weir-broker");
            child.wait().expect("reap weir-broker");
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `weir-broker` on `data` with `args`, stderr to `log`.
fn spawn_broker(data: &Path, log: &Path, args: &[&str]) -> Child {
    Command::new(broker_binary())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("WEIR_LISTEN")
        .env_remove("WEIR_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the log file"))
        .spawn()
        .expect("spawn weir-broker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_broker_on_the_same_data_dir_refuses_to_start_and_the_first_carries_on() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let mut first = BrokerProcess::start(&data, &dir.path().join("first.log"), &[]);
    let mut client = Client::connect(first.addr()).await;
    client.create_topic("locked", 1).await;
    let one = batch(3);
    assert_eq!(client.produce_ok("locked", 0, one.clone()).await, 0);

    let second_log = dir.path().join("second.log");
    let mut second = spawn_broker(&data, &second_log, &[]);
    let status = exit_within(&mut second, START_TIMEOUT);
    let text = std::fs::read_to_string(&second_log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("a second broker on the same data directory kept running:\n{text}")
    });
    assert!(!status.success(), "second broker exited with {status}");
    assert!(
        !text.contains("weir-broker listening"),
        "second broker served before exiting:\n{text}"
    );
    assert!(
        text.contains(&data.display().to_string()) && text.contains("in use"),
        "the refusal names the directory:\n{text}"
    );
    assert!(
        text.contains(&format!("pid {}", first.pid())),
        "the refusal names the holder's pid {}:\n{text}",
        first.pid()
    );

    // The first broker was not disturbed: it acknowledges, serves, and keeps all of it
    // across a restart.
    let two = batch(2);
    assert_eq!(client.produce_ok("locked", 0, two.clone()).await, 3);
    let mut expected = stored(&one, 0);
    expected.extend(stored(&two, 3));
    assert_eq!(client.fetch_now("locked", 0, 0).await, expected);
    drop(client);
    assert!(first.stop(), "first broker stops cleanly");
    first.restart();
    let mut client = Client::connect(first.addr()).await;
    assert_eq!(client.fetch_now("locked", 0, 0).await, expected);
    drop(client);
    assert!(first.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_broker_holds_the_lock_until_it_has_stopped() {
    let mut broker = TestBroker::start().await;
    let mut config = BrokerConfig::for_tests(broker.data_dir());
    config.listen = "127.0.0.1:0".parse().expect("address");
    match Broker::new(config).start().await {
        Err(BrokerError::DirLock(DirLockError::InUse { dir, holder })) => {
            assert_eq!(dir, broker.data_dir());
            assert_eq!(holder, format!("pid {}", std::process::id()));
        }
        other => panic!("a second broker on a locked directory: {other:?}"),
    }
    // Shutdown releases it: the same directory starts again in the same process.
    broker.restart().await;
    broker.client().await.create_topic("after-restart", 1).await;
    broker.shutdown().await;
}

#[test]
fn impossible_settings_are_refused_at_start_up_naming_the_flag() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--default-partitions", "0"],
            "--default-partitions",
            "between 1 and 10000",
        ),
        (
            &["--segment-bytes", "100"],
            "--segment-bytes",
            "between 4096 and 2147483647",
        ),
        (
            &["--segment-bytes", "4000000000"],
            "--segment-bytes",
            "between 4096 and 2147483647",
        ),
        (
            &["--max-connections", "0"],
            "--max-connections",
            "between 1 and",
        ),
        (
            &["--index-interval-bytes", "0"],
            "--index-interval-bytes",
            "between 1 and",
        ),
        (
            &["--max-frame-bytes", "16"],
            "--max-frame-bytes",
            "between 128 and 2147483647",
        ),
        (
            &["--retention-check-ms", "0"],
            "--retention-check-ms",
            "between 1 and",
        ),
        (
            &["--idle-timeout-secs", "0"],
            "--idle-timeout-secs",
            "between 1 and",
        ),
    ];
    let dir = tempfile::tempdir().expect("temporary directory");
    for (i, (args, flag, range)) in cases.iter().enumerate() {
        let data = dir.path().join(format!("data-{i}"));
        let log = dir.path().join(format!("broker-{i}.log"));
        let mut child = spawn_broker(&data, &log, args);
        let status = exit_within(&mut child, START_TIMEOUT);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let status = status.unwrap_or_else(|| panic!("{args:?} was accepted:\n{text}"));
        assert_eq!(status.code(), Some(2), "{args:?}: {status}\n{text}");
        assert!(
            text.contains(flag) && text.contains(range),
            "{args:?}: the message names {flag} and {range}:\n{text}"
        );
        assert!(
            !data.exists(),
            "{args:?}: the data directory was touched before the settings were checked"
        );
    }
}

/// A broker whose stderr is a pipe that the reader closes right after start-up, as with
/// `weir-broker 2>&1 | head` or a log shipper that died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_costs_log_lines_but_no_request_and_no_clean_shutdown() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(broker_binary())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data)
        .env("WEIR_LOG", "info")
        .env_remove("WEIR_LISTEN")
        .env_remove("WEIR_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir-broker");
    {
        // Read until it listens, then close the pipe: every later log line meets EPIPE.
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("weir-broker listening") => break,
                Some(Ok(_)) => {}
                other => panic!("weir-broker ended its stderr before listening: {other:?}"),
            }
        }
    }
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut client = Client::connect(addr).await;
    // Each creation logs a line at info.
    let topics = ["piped-a", "piped-b", "piped-c"];
    for topic in topics {
        client.create_topic(topic, 2).await;
    }
    let records = batch(4);
    for topic in topics {
        assert_eq!(client.produce_ok(topic, 1, records.clone()).await, 0);
        assert_eq!(client.fetch_now(topic, 1, 0).await, stored(&records, 0));
    }
    drop(client);

    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = exit_within(&mut child, START_TIMEOUT).expect("the broker exits after SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    for topic in topics {
        for p in 0..2 {
            let marker = data.join(format!("{topic}-{p}")).join("clean-shutdown");
            assert!(marker.exists(), "{} after a clean stop", marker.display());
        }
    }

    // The next start is a clean one and finds everything.
    let mut broker = BrokerProcess::start(&data, &dir.path().join("broker.log"), &[]);
    let mut client = Client::connect(broker.addr()).await;
    for topic in topics {
        assert_eq!(client.fetch_now(topic, 1, 0).await, stored(&records, 0));
    }
    drop(client);
    assert!(
        !broker
            .log_text()
            .contains("recovered log after unclean shutdown")
    );
    assert!(broker.stop());
}
