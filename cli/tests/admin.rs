//! `weir topics trim|add-partitions`, `weir groups delete-offsets` and `weir cluster
//! describe` against a broker, plain output to a pipe.

mod common;

use common::{Env, seq};

#[test]
fn a_topic_is_trimmed_and_grown() {
    let env = Env::start();
    env.ok(&["topics", "create", "orders", "--partitions", "2"], b"");
    env.ok(&["produce", "-t", "orders", "-p", "0"], seq(10).as_bytes());
    env.ok(&["produce", "-t", "orders", "-p", "1"], seq(4).as_bytes());
    assert_eq!(
        env.ok(
            &["topics", "trim", "orders", "-p", "0", "--before", "6"],
            b""
        ),
        "orders\t0\t6\n"
    );
    assert_eq!(
        env.ok(
            &[
                "consume",
                "-t",
                "orders",
                "-p",
                "0",
                "--offset",
                "beginning",
                "-e"
            ],
            b""
        ),
        "7\n8\n9\n10\n"
    );
    assert_eq!(
        env.ok(&["topics", "trim", "orders", "--before", "end"], b""),
        "orders\t0\t10\norders\t1\t4\n"
    );
    assert_eq!(
        env.ok(&["topics", "describe", "orders"], b""),
        "orders\t0\t0\t0\t0\t0\t10\t10\norders\t1\t0\t0\t0\t0\t4\t4\n"
    );
    // Past the end: the broker's refusal, exit code 1, the table still printed.
    let out = env.run(
        &["topics", "trim", "orders", "-p", "1", "--before", "99"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OFFSET_OUT_OF_RANGE"), "{stderr}");
    let out = env.run(&["topics", "trim", "orders", "--before", "-3"], b"");
    assert_eq!(out.status.code(), Some(2));

    assert_eq!(
        env.ok(&["topics", "add-partitions", "orders", "--total", "5"], b""),
        "topic orders now has 5 partitions\n"
    );
    assert_eq!(env.ok(&["topics", "list"], b""), "orders\t5\n");
    let out = env.run(&["topics", "add-partitions", "orders", "--total", "3"], b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INVALID_PARTITIONS"), "{stderr}");
}

#[test]
fn a_groups_offsets_are_deleted() {
    let env = Env::start();
    env.ok(&["topics", "create", "orders", "--partitions", "2"], b"");
    env.ok(&["produce", "-t", "orders", "-p", "1"], seq(5).as_bytes());
    for p in ["0", "1"] {
        env.ok(
            &[
                "groups",
                "reset-offsets",
                "billing",
                "-t",
                "orders",
                "-p",
                p,
                "--to",
                "earliest",
            ],
            b"",
        );
    }
    assert_eq!(
        env.ok(
            &[
                "groups",
                "delete-offsets",
                "billing",
                "--topic",
                "orders",
                "-p",
                "1"
            ],
            b""
        ),
        "deleted the committed offsets of group billing for orders partitions 1\n"
    );
    assert_eq!(
        env.ok(&["groups", "describe", "billing"], b""),
        "group\tbilling\tEmpty\t\t0\noffset\torders\t0\t0\t0\t0\n"
    );
    let out = env.run(
        &["groups", "delete-offsets", "nobody", "--topic", "orders"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GROUP_ID_NOT_FOUND"), "{stderr}");
}

#[test]
fn the_cluster_is_described() {
    let env = Env::start();
    let out = env.ok(&["cluster", "describe"], b"");
    let mut lines = out.lines();
    let id = lines.next().unwrap();
    assert!(id.starts_with("cluster id: ") && id.len() > 12, "{out}");
    let port = env.bootstrap.rsplit(':').next().unwrap();
    assert_eq!(lines.next(), Some("controller id: 0"));
    // No topic yet: the broker leads no partition.
    assert_eq!(
        lines.next(),
        Some(format!("0\t127.0.0.1\t{port}\t-\tyes\t0").as_str())
    );
    assert_eq!(lines.next(), None);
}
