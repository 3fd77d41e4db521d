//! `weir cluster describe` and `weir topics describe` against a cluster of three brokers
//! (faked in process, `weir_tests::fake_cluster`): every broker with its address and the
//! partitions it leads, each partition's leader, replicas and in-sync replicas, a broker
//! going down, and a bootstrap list whose first address is dead; the same list against the
//! real `weir-broker` binary.

mod common;

use common::{StderrLines, run, weir_at};
use weir_tests::fake_cluster::FakeCluster;

/// The fake brokers run on this runtime while the test thread waits on `weir`.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `weir args` against `bootstrap` and expects success; stdout.
fn ok(bootstrap: &str, args: &[&str]) -> String {
    let out = run(weir_at(bootstrap, args), b"");
    assert!(
        out.status.success(),
        "weir {args:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// An address nothing listens on.
fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

#[test]
fn the_cluster_and_its_leaders_are_described_before_and_after_a_broker_stops() {
    let runtime = runtime();
    let mut fake = runtime.block_on(FakeCluster::start(3));
    fake.create_topic("orders", &[1, 2, 2, 3]);
    fake.create_topic("audit", &[2]);
    let ports: Vec<u16> = (1..=3).map(|node| fake.addr(node).port()).collect();
    let port = |node: i32| ports[usize::try_from(node - 1).expect("node")];
    // Any reachable address of the list suffices.
    let bootstrap = format!("{},{}", dead_address(), fake.bootstrap());

    let described = ok(&bootstrap, &["cluster", "describe"]);
    let want = format!(
        "cluster id: fake-cluster\ncontroller id: 1\n\
         1\t127.0.0.1\t{}\t-\tyes\t1\n\
         2\t127.0.0.1\t{}\t-\tno\t3\n\
         3\t127.0.0.1\t{}\t-\tno\t1\n",
        port(1),
        port(2),
        port(3)
    );
    assert_eq!(described, want);
    // The Kafka tools' name of the option, with a comma-separated list.
    let by_alias = run(
        weir_at(
            "",
            &["--bootstrap-server", &bootstrap, "cluster", "describe"],
        ),
        b"",
    );
    assert!(by_alias.status.success(), "{by_alias:?}");
    assert_eq!(String::from_utf8_lossy(&by_alias.stdout), want);

    assert_eq!(
        ok(&bootstrap, &["topics", "describe", "orders"]),
        "orders\t0\t1\t0\t1,2,3\t1,2,3\t0\t0\n\
         orders\t1\t2\t0\t2,1,3\t2,1,3\t0\t0\n\
         orders\t2\t2\t0\t2,1,3\t2,1,3\t0\t0\n\
         orders\t3\t3\t0\t3,1,2\t3,1,2\t0\t0\n"
    );

    // Broker 1 (the controller) stops: the controller moves, its partition has no leader,
    // and it drops out of every ISR; the rest is described as before.
    fake.stop(1);
    assert_eq!(
        ok(&bootstrap, &["cluster", "describe"]),
        format!(
            "cluster id: fake-cluster\ncontroller id: 2\n\
             2\t127.0.0.1\t{}\t-\tyes\t3\n\
             3\t127.0.0.1\t{}\t-\tno\t1\n\
             partitions without a leader: 1\n",
            port(2),
            port(3)
        )
    );
    assert_eq!(
        ok(&bootstrap, &["topics", "describe", "orders"]),
        "orders\t0\t-\t0\t1,2,3\t2,3\t-\t-\n\
         orders\t1\t2\t0\t2,1,3\t2,3\t0\t0\n\
         orders\t2\t2\t0\t2,1,3\t2,3\t0\t0\n\
         orders\t3\t3\t0\t3,1,2\t3,2\t0\t0\n"
    );
    drop(fake);
}

#[test]
fn a_topic_created_is_described_once_the_cluster_knows_it() {
    let runtime = runtime();
    let fake = runtime.block_on(FakeCluster::start(3));
    // The next three Metadata answers leave the new topic out, as a broker lagging behind
    // the one that created it would.
    fake.set_create_lag(3);
    let created = ok(
        &fake.bootstrap(),
        &["topics", "create", "fresh", "--partitions", "3"],
    );
    assert_eq!(created, "created topic fresh with 3 partitions\n");
    // Spread over the three brokers.
    assert_eq!(
        ok(&fake.bootstrap(), &["topics", "describe", "fresh"]),
        "fresh\t0\t1\t0\t1\t1\t0\t0\n\
         fresh\t1\t2\t0\t2\t2\t0\t0\n\
         fresh\t2\t3\t0\t3\t3\t0\t0\n"
    );
    drop(fake);
}

#[test]
fn weir_consume_says_when_a_partition_has_no_leader_and_when_it_has_one_again() {
    let runtime = runtime();
    let mut fake = runtime.block_on(FakeCluster::start(3));
    fake.create_topic("watched", &[1, 2, 3]);
    fake.stop(3);
    let mut child = weir_at(&fake.bootstrap(), &["consume", "-t", "watched"])
        .spawn()
        .expect("spawn weir");
    let mut stderr = StderrLines::follow(child.stderr.take().expect("stderr"));
    let within = std::time::Duration::from_secs(20);
    let warned = stderr.expect("no leader", within);
    assert!(
        warned.starts_with("warning: partition watched-2 has no leader"),
        "{warned}"
    );
    fake.move_leader("watched", 2, 1);
    stderr.expect("note: every partition has a leader again", within);
    drop(child.kill());
    drop(child.wait());
    drop(fake);
}

#[test]
fn a_bootstrap_list_reaches_the_real_broker_past_a_dead_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = weir_tests::process::BrokerProcess::start(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &[],
    );
    let bootstrap = format!("{},{}", dead_address(), broker.bootstrap());
    ok(
        &bootstrap,
        &["topics", "create", "listed", "--partitions", "2"],
    );
    let out = run(
        weir_at(&bootstrap, &["produce", "-t", "listed", "-p", "1"]),
        b"a\nb\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        ok(&bootstrap, &["topics", "describe", "listed"]),
        "listed\t0\t0\t0\t0\t0\t0\t0\nlisted\t1\t0\t0\t0\t0\t0\t2\n"
    );
    let described = ok(&bootstrap, &["cluster", "describe"]);
    let port = broker.addr().port();
    assert!(
        described.ends_with(&format!(
            "controller id: 0\n0\t127.0.0.1\t{port}\t-\tyes\t2\n"
        )),
        "{described}"
    );
    broker.stop();
}
