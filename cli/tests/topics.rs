//! `weir topics ...`, plain output to a pipe, and the error paths with their exit codes.

mod common;

use common::{Env, weir_at};

#[test]
fn topic_configs_are_set_at_creation_changed_and_described() {
    let env = Env::start();
    env.ok(
        &[
            "topics",
            "create",
            "orders",
            "--config",
            "retention.ms=86400000",
            "--config",
            "cleanup.policy=compact",
        ],
        b"",
    );
    let described = env.ok(&["topics", "describe", "orders", "--configs"], b"");
    assert!(
        described.contains("orders\tretention.ms\t86400000\tDYNAMIC_TOPIC_CONFIG\n"),
        "{described}"
    );
    assert!(
        described.contains("orders\tcleanup.policy\tcompact\tDYNAMIC_TOPIC_CONFIG\n"),
        "{described}"
    );
    assert_eq!(
        env.ok(
            &[
                "topics",
                "alter-config",
                "orders",
                "--set",
                "segment.ms=60000",
                "--delete",
                "retention.ms"
            ],
            b""
        ),
        "changed 2 configs of topic orders\n"
    );
    let described = env.ok(&["topics", "describe", "orders", "--configs"], b"");
    assert!(
        described.contains("orders\tsegment.ms\t60000\tDYNAMIC_TOPIC_CONFIG\n"),
        "{described}"
    );
    assert!(
        described.contains("orders\tretention.ms\t604800000\tSTATIC_BROKER_CONFIG\n"),
        "{described}"
    );
    let out = env.run(
        &["topics", "alter-config", "orders", "--set", "segment.ms=0"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INVALID_CONFIG (40)") && stderr.contains("segment.ms"),
        "{stderr}"
    );
    let out = env.run(&["topics", "alter-config", "orders"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let env = Env::start();
    assert_eq!(
        env.ok(&["topics", "create", "orders", "--partitions", "3"], b""),
        "created topic orders with 3 partitions\n"
    );
    env.ok(&["topics", "create", "audit"], b"");
    // The broker's refusal of a configuration comes through as it is, exit code 1.
    let out = env.run(
        &["topics", "create", "x", "--config", "retention.ms=soon"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: creating topic x: INVALID_CONFIG (40)"),
        "{stderr}"
    );
    assert_eq!(env.ok(&["topics", "list"], b""), "audit\t1\norders\t3\n");
    env.ok(&["produce", "-t", "orders", "-p", "2"], b"a\nb\n");
    assert_eq!(
        env.ok(&["topics", "describe", "orders"], b""),
        "orders\t0\t0\t0\t0\t0\t0\t0\norders\t1\t0\t0\t0\t0\t0\t0\norders\t2\t0\t0\t0\t0\t0\t2\n"
    );

    let out = env.run(&["topics", "create", "orders"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: creating topic orders: TOPIC_ALREADY_EXISTS (36): topic orders already exists\n"
    );
    let out = env.run(&["topics", "create", "x", "--config", "novalue"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --config `novalue`: expected KEY=VALUE\n"
    );

    assert_eq!(
        env.ok(&["topics", "delete", "orders", "audit"], b""),
        "deleted topic orders\ndeleted topic audit\n"
    );
    assert_eq!(env.ok(&["topics", "list"], b""), "");
    for args in [
        &["topics", "describe", "orders"][..],
        &["consume", "-t", "orders", "-e"][..],
    ] {
        let out = env.run(args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "error: topic orders does not exist (list topics with `weir topics list`, create \
             one with `weir topics create`)\n",
            "{args:?}"
        );
    }
}

#[test]
fn no_broker_listening_is_one_actionable_line_and_exit_code_3() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    for args in [
        &["topics", "list"][..],
        &["produce", "-t", "t"][..],
        &["consume", "-t", "t"][..],
        &["groups", "list"][..],
        &["perf", "produce", "--records", "10"][..],
    ] {
        let out = common::run(weir_at(&addr, args), b"x\n");
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "error: cannot reach a broker at {addr}: connection refused — is weir-broker \
                 running? (set --bootstrap or WEIR_BOOTSTRAP)\n"
            ),
            "{args:?}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn usage_errors_exit_2_and_help_shows_examples() {
    let out = common::run(weir_at("127.0.0.1:9", &["consume"]), b"");
    assert_eq!(out.status.code(), Some(2));
    let out = common::run(
        weir_at("127.0.0.1:9", &["consume", "-t", "t", "--offset", "soon"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "expected beginning, end, an offset N, +N (after the start), -N (the last N)"
        )
    );
    let out = common::run(
        weir_at(
            "127.0.0.1:9",
            &["consume", "-t", "t", "-g", "g", "--offset", "5"],
        ),
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weir groups reset-offsets"));

    for args in [
        &["--help"][..],
        &["produce", "--help"][..],
        &["consume", "--help"][..],
        &["perf", "produce", "--help"][..],
        &["groups", "reset-offsets", "--help"][..],
    ] {
        let out = common::run(weir_at("127.0.0.1:9", args), b"");
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Example"), "{args:?}: {help}");
        assert!(help.contains("weir "), "{args:?}: {help}");
    }
    let out = common::run(weir_at("127.0.0.1:9", &["completions", "bash"]), b"");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_weir()"));
}
