//! `weir consume --group`, `weir groups ...` and Ctrl-C: a member commits what it printed
//! and leaves its group when interrupted.

mod common;

use std::process::Stdio;

use common::{Env, read_lines, seq, wait};

#[test]
fn a_group_consumes_commits_and_its_offsets_can_be_reset() {
    let env = Env::start();
    env.ok(&["produce", "-t", "orders"], seq(100).as_bytes());
    let first = env.ok(
        &[
            "consume",
            "-t",
            "orders",
            "-g",
            "billing",
            "--offset",
            "beginning",
            "--count",
            "30",
        ],
        b"",
    );
    assert_eq!(first, seq(30));
    // The group resumes after what it printed, even though a poll returned more.
    let next = env.ok(
        &["consume", "-t", "orders", "-g", "billing", "--count", "5"],
        b"",
    );
    assert_eq!(next, "31\n32\n33\n34\n35\n");

    // One line per group: its id, then its protocol type (empty on Weir once the group has
    // no members, "consumer" on Kafka).
    let listed = env.ok(&["groups", "list"], b"");
    assert!(
        listed == "billing\t\n" || listed == "billing\tconsumer\n",
        "{listed:?}"
    );
    assert_eq!(
        env.ok(&["groups", "describe", "billing"], b""),
        "group\tbilling\tEmpty\t\t0\noffset\torders\t0\t35\t100\t65\n"
    );

    assert_eq!(
        env.ok(
            &[
                "groups",
                "reset-offsets",
                "billing",
                "-t",
                "orders",
                "--to",
                "90",
                "--dry-run"
            ],
            b""
        ),
        "orders\t0\t90\n"
    );
    assert!(
        env.ok(&["groups", "describe", "billing"], b"")
            .contains("\t35\t100\t65\n")
    );
    env.ok(
        &[
            "groups",
            "reset-offsets",
            "billing",
            "-t",
            "orders",
            "--to",
            "90",
        ],
        b"",
    );
    let rest = env.ok(&["consume", "-t", "orders", "-g", "billing", "-e"], b"");
    assert_eq!(rest, "91\n92\n93\n94\n95\n96\n97\n98\n99\n100\n");

    // Offsets beyond the log are kept within it; earliest and latest are its ends.
    assert_eq!(
        env.ok(
            &[
                "groups",
                "reset-offsets",
                "billing",
                "-t",
                "orders",
                "--to",
                "5000"
            ],
            b""
        ),
        "orders\t0\t100\n"
    );
    assert_eq!(
        env.ok(
            &[
                "groups",
                "reset-offsets",
                "billing",
                "-t",
                "orders",
                "--to",
                "earliest"
            ],
            b""
        ),
        "orders\t0\t0\n"
    );
    assert_eq!(
        env.ok(
            &[
                "groups",
                "reset-offsets",
                "billing",
                "-t",
                "orders",
                "--to",
                "@1000"
            ],
            b""
        ),
        "orders\t0\t0\n"
    );

    assert_eq!(
        env.ok(&["groups", "delete", "billing"], b""),
        "deleted group billing\n"
    );
    let out = env.run(&["groups", "describe", "billing"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: group billing does not exist (list groups with `weir groups list`)\n"
    );
}

#[test]
fn ctrl_c_commits_what_was_printed_and_leaves_the_group() {
    let env = Env::start();
    env.ok(&["produce", "-t", "events"], seq(1000).as_bytes());
    let mut child = env
        .weir(&[
            "consume",
            "-t",
            "events",
            "-g",
            "tail",
            "--offset",
            "beginning",
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let stdout = child.stdout.take().expect("stdout piped");
    let (printed, _rest) = read_lines(stdout, 1000);
    assert_eq!(printed, seq(1000));

    // While it follows the topic, the group has one member that owns the partition.
    let described = env.ok(&["groups", "describe", "tail"], b"");
    let member = described
        .lines()
        .find(|l| l.starts_with("member\t"))
        .unwrap_or_else(|| panic!("a member in {described:?}"));
    assert!(member.ends_with("\tevents:0"), "{member}");

    // Resetting an active group's offsets is refused.
    let out = env.run(
        &[
            "groups",
            "reset-offsets",
            "tail",
            "-t",
            "events",
            "--to",
            "earliest",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has 1 active members"));

    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert_eq!(wait(&mut child).code(), Some(0));
    assert_eq!(
        env.ok(&["groups", "describe", "tail"], b""),
        "group\ttail\tEmpty\t\t0\noffset\tevents\t0\t1000\t1000\t0\n"
    );
}
