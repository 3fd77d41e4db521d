//! The ledger end to end under crashes: several clients send thousands of random commands
//! (some of them twice, as a retrying client would) while the command handler and the
//! projection service, real `bank-ledger` processes, are killed with SIGKILL and restarted
//! at random moments; the handler also exits by itself at random step boundaries of its
//! batches (`--crash-one-in`), so that every window of the crash table in the README is hit.
//! Afterwards:
//!
//! - every command sent took effect exactly once: its id is in its account's fold, the fold
//!   refuses an id twice, and the event count is exactly the commands plus the saga steps;
//! - every transfer saga finished, and balances sum to deposits minus withdrawals;
//! - the projection's checkpoint equals the read model folded from all events;
//! - each partition rebuilt from its latest snapshot equals its fold from offset 0;
//! - a projection rebuilt from scratch equals the one that lived through the crashes.
//!
//! Randomness is seeded: the seed is printed, and `WEIR_SEED=<seed>` replays the same
//! commands and the same kill schedule (the interleaving still depends on the machine).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bank_ledger::embedded::Embedded;
use bank_ledger::handler::{CRASH_EXIT_CODE, command_record};
use bank_ledger::model::{Command, CommandKind};
use bank_ledger::projection::ReadModel;
use bank_ledger::topics::{self, PARTITIONS};
use bank_ledger::{settle, snapshot, verify};
use tokio::time::Instant;
use weir_client::backoff::{JitterSource, SplitMix64};
use weir_client::{Producer, ProducerConfig};

const CLIENTS: u64 = 4;
const COMMANDS_PER_CLIENT: u64 = 700;
const ACCOUNTS: u64 = 24;
/// Account ids that are never opened: transfers to them are refunded.
const GHOSTS: u64 = 3;
/// The handler crashes at one step boundary in this many (four per batch).
const CRASH_ONE_IN: u64 = 15;

fn seed() -> u64 {
    std::env::var("WEIR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        })
}

/// A number in `0..n`.
fn below(rng: &mut SplitMix64, n: u64) -> u64 {
    rng.next_u64() % n
}

/// One `bank-ledger` subcommand run as a child process, killed with SIGKILL on demand.
struct Service {
    name: &'static str,
    args: Vec<String>,
    /// `(one_in, seed)`: the handler's injected crashes, with a new seed at each start.
    crashes: Option<(u64, u64)>,
    child: Option<Child>,
    starts: u64,
}

impl Service {
    fn new(name: &'static str, args: Vec<String>) -> Self {
        Self {
            name,
            args,
            crashes: None,
            child: None,
            starts: 0,
        }
    }

    fn start(&mut self) {
        let mut args = self.args.clone();
        if let Some((one_in, seed)) = self.crashes {
            args.extend([
                "--crash-one-in".to_owned(),
                one_in.to_string(),
                "--crash-seed".to_owned(),
                (seed + self.starts).to_string(),
            ]);
        }
        let child = Process::new(env!("CARGO_BIN_EXE_bank-ledger"))
            .args(&args)
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", self.name));
        self.child = Some(child);
        self.starts += 1;
    }

    /// Whether the process crashed by injection (reaped then); any other exit fails the test.
    fn crashed(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait().expect("try_wait") {
            None => false,
            Some(status) => {
                assert_eq!(
                    status.code(),
                    Some(CRASH_EXIT_CODE),
                    "{} exited on its own: {status}",
                    self.name
                );
                self.child = None;
                true
            }
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no cleanup, no goodbye to the group.
    fn kill(&mut self) {
        if self.crashed() {
            return;
        }
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("reap");
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already failing or finished: only make sure no process outlives the test.
            if child.kill().is_ok() {
                drop(child.wait());
            }
        }
    }
}

fn handler_args(bootstrap: &str) -> Vec<String> {
    [
        "--bootstrap",
        bootstrap,
        "handler",
        "--session-timeout-ms",
        "1000",
        "--snapshot-every",
        "25",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn projection_args(bootstrap: &str, state: &Path, rebuild: bool) -> Vec<String> {
    let mut args = [
        "--bootstrap",
        bootstrap,
        "projection",
        "--state",
        &state.display().to_string(),
        "--session-timeout-ms",
        "1000",
        "--checkpoint-ms",
        "300",
    ]
    .map(str::to_owned)
    .to_vec();
    if rebuild {
        args.push("--rebuild".to_owned());
    }
    args
}

/// One client's random commands: `(account, id)` of every distinct command it sent.
async fn client(bootstrap: String, id: u64, seed: u64) -> Vec<(String, String)> {
    let mut rng = SplitMix64::new(seed ^ (id + 1).wrapping_mul(0x9e37_79b9));
    let producer = Producer::new(ProducerConfig::new([bootstrap.as_str()])).expect("producer");
    let account = |rng: &mut SplitMix64| format!("acct-{:02}", below(rng, ACCOUNTS));
    let mut sent: Vec<Command> = Vec::new();
    let mut deliveries = Vec::new();
    for n in 0..COMMANDS_PER_CLIENT {
        let roll = below(&mut rng, 100);
        let command = if roll < 7 && !sent.is_empty() {
            // A retry: the same command, same id, sent again.
            let i = usize::try_from(below(&mut rng, sent.len() as u64)).expect("index");
            sent[i].clone()
        } else {
            let kind = match roll {
                _ if n < 8 || roll < 12 => CommandKind::Open {
                    owner: format!("owner-{id}-{n}"),
                },
                12..40 => CommandKind::Deposit {
                    amount: 1 + i64::try_from(below(&mut rng, 10_000)).expect("small"),
                },
                40..60 => CommandKind::Withdraw {
                    amount: 1 + i64::try_from(below(&mut rng, 8_000)).expect("small"),
                },
                _ => CommandKind::Transfer {
                    to: if below(&mut rng, 10) == 0 {
                        format!("ghost-{}", below(&mut rng, GHOSTS))
                    } else {
                        account(&mut rng)
                    },
                    amount: 1 + i64::try_from(below(&mut rng, 6_000)).expect("small"),
                },
            };
            let command = Command {
                id: format!("c{id}-{n}"),
                account: account(&mut rng),
                kind,
            };
            sent.push(command.clone());
            command
        };
        let record = command_record(&command).expect("encode");
        deliveries.push(producer.send(record).await.expect("buffer"));
        tokio::time::sleep(Duration::from_millis(5 + below(&mut rng, 30))).await;
    }
    for delivery in deliveries {
        delivery.await.expect("command written");
    }
    producer.close().await.expect("close");
    sent.into_iter().map(|c| (c.account, c.id)).collect()
}

async fn wait_for_model(bootstrap: &str, state: &Path) -> ReadModel {
    settle::wait(bootstrap, state, Duration::from_secs(120))
        .await
        .expect("handler and projection catch up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_take_effect_once_through_crashes_and_every_view_agrees() {
    let seed = seed();
    println!("seed {seed} (WEIR_SEED={seed} replays it)");
    let broker = Embedded::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("broker");
    let bootstrap = broker.addr().to_string();
    topics::setup(&bootstrap).await.expect("topics");
    let dir = tempfile::tempdir().expect("tempdir");
    let state: PathBuf = dir.path().join("model.json");

    let mut handler = Service::new("handler", handler_args(&bootstrap));
    handler.crashes = Some((CRASH_ONE_IN, seed));
    let mut projection = Service::new("projection", projection_args(&bootstrap, &state, false));
    handler.start();
    projection.start();

    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(bootstrap.clone(), i, seed)))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let chaos = {
        let done = Arc::clone(&done);
        let mut rng = SplitMix64::new(seed);
        tokio::spawn(async move {
            let mut kills = (0, 0);
            let mut injected = 0;
            let mut next_kill =
                Instant::now() + Duration::from_millis(500 + below(&mut rng, 1_500));
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if handler.crashed() {
                    injected += 1;
                    handler.start();
                }
                if Instant::now() < next_kill {
                    continue;
                }
                next_kill = Instant::now() + Duration::from_millis(500 + below(&mut rng, 1_500));
                let victim = if below(&mut rng, 2) == 0 {
                    kills.0 += 1;
                    &mut handler
                } else {
                    kills.1 += 1;
                    &mut projection
                };
                victim.kill();
                tokio::time::sleep(Duration::from_millis(below(&mut rng, 300))).await;
                victim.start();
            }
            (handler, projection, kills, injected)
        })
    };
    let mut sent = BTreeSet::new();
    for task in clients {
        sent.extend(task.await.expect("client"));
    }
    done.store(true, Ordering::Relaxed);
    let (mut handler, mut projection, kills, injected) = chaos.await.expect("chaos");
    println!(
        "{} distinct commands sent; handler killed {} times and crashed {injected} times, \
         projection killed {} times",
        sent.len(),
        kills.0,
        kills.1
    );
    assert!(kills.0 > 0 && kills.1 > 0, "both services were killed");
    assert!(injected > 0, "the handler crashed between steps");
    // Settle without injected crashes, so that the end is reached.
    handler.kill();
    handler.crashes = None;
    handler.start();

    let model = wait_for_model(&bootstrap, &state).await;
    let log = verify::EventLog::read(&bootstrap)
        .await
        .expect("read events");
    let report = verify::check(&log).expect("the events fold: no command twice, no overdraft");
    println!("{report:?}");
    assert!(report.violations.is_empty(), "{:#?}", report.violations);

    // Exactly once: every command is handled, and the log holds exactly one event per
    // command plus the saga's credit (or refusal) and refund.
    let ledger = log.fold(None).expect("fold");
    for (account, id) in &sent {
        assert!(
            ledger
                .accounts
                .get(account)
                .is_some_and(|a| a.handled.contains_key(id)),
            "command {id} on {account} never took effect"
        );
    }
    assert_eq!(
        report.events,
        sent.len() + report.transfers + report.refunded,
        "one event per command, credit and refund"
    );
    assert!(
        report.transfers > 100 && report.refunded > 0,
        "the saga ran both ways"
    );

    assert_eq!(model, log.project(), "projection = fold of all events");

    let mut from_snapshots = 0;
    for p in 0..PARTITIONS {
        let rebuilt = snapshot::rebuild(&bootstrap, p, true)
            .await
            .expect("rebuild");
        assert_eq!(
            rebuilt.ledger,
            log.fold(Some(p)).expect("fold"),
            "partition {p}"
        );
        if rebuilt.snapshot_offset > 0 {
            from_snapshots += 1;
        }
    }
    assert!(
        from_snapshots > 0,
        "some partition was rebuilt from a snapshot"
    );

    projection.kill();
    let fresh_state = dir.path().join("rebuilt.json");
    let mut rebuilt = Service::new(
        "rebuilt projection",
        projection_args(&bootstrap, &fresh_state, true),
    );
    rebuilt.start();
    assert_eq!(
        wait_for_model(&bootstrap, &fresh_state).await,
        model,
        "a projection rebuilt from offset 0 equals the one that lived through the crashes"
    );
    rebuilt.kill();
    handler.kill();
    broker.shutdown().await.expect("broker shutdown");
}
