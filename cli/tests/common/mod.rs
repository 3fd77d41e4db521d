//! Harness for driving the real `weir` binary as a user would: an in-process broker on a free
//! port (kept running on its own runtime while the test thread blocks on the child), and
//! helpers that run `weir` with `WEIR_BOOTSTRAP` pointing at it, its stdout a pipe, and every
//! wait bounded so that a hung command fails the test instead of blocking the run.

#![allow(dead_code, unreachable_pub)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weir_tests::TestBroker;

/// Longest one `weir` invocation may take on a loaded machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A broker for one test.
pub struct Env {
    broker: Option<TestBroker>,
    runtime: tokio::runtime::Runtime,
    /// `host:port` of the broker.
    pub bootstrap: String,
}

impl Env {
    /// Starts a broker; groups rebalance at once (no initial delay) to keep tests short.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// [`Self::start`] with further changes to the broker's configuration.
    pub fn start_with(change: impl FnOnce(&mut weir_broker::BrokerConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let broker = runtime.block_on(TestBroker::start_with(|c| {
            c.group_initial_rebalance_delay_ms = 0;
            change(c);
        }));
        let bootstrap = broker.addr().to_string();
        Self {
            broker: Some(broker),
            runtime,
            bootstrap,
        }
    }

    /// `weir` with `args`, pointed at this broker.
    pub fn weir(&self, args: &[&str]) -> Command {
        weir_at(&self.bootstrap, args)
    }

    /// Runs `weir args` with `stdin` as input; fails the test after [`RUN_TIMEOUT`].
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(self.weir(args), stdin)
    }

    /// Runs `weir args` and expects success, returning stdout.
    pub fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "weir {args:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            self.runtime.block_on(broker.shutdown());
        }
    }
}

/// `weir args` against `bootstrap`, with a clean environment for the tool's variables.
pub fn weir_at(bootstrap: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(args)
        .env("WEIR_BOOTSTRAP", bootstrap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` with `stdin` written from a thread (so a large input cannot deadlock against
/// a full stdout pipe), failing the test after [`RUN_TIMEOUT`].
pub fn run(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd.spawn().expect("spawn weir");
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The command may stop reading early (an error): that is its answer, not ours.
        drop(input.write_all(&data));
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || drop(tx.send(child.wait_with_output())));
    let output = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(out) => out.expect("wait for weir"),
        Err(_timeout) => {
            drop(Command::new("kill").args(["-9", &pid.to_string()]).status());
            panic!(
                "weir {:?} did not finish within {RUN_TIMEOUT:?}",
                cmd.get_args()
            );
        }
    };
    writer.join().expect("stdin writer");
    output
}

/// Waits for `child` to exit, failing the test after [`RUN_TIMEOUT`].
pub fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            drop(child.kill());
            panic!("weir did not exit within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `stream` until it has `lines` newlines (or ends), failing after [`RUN_TIMEOUT`].
pub fn read_lines(stream: impl Read + Send + 'static, lines: usize) -> (String, impl Read) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stream = stream;
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        while seen.iter().filter(|b| **b == b'\n').count() < lines {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        drop(tx.send((seen, stream)));
    });
    let (seen, stream) = rx
        .recv_timeout(RUN_TIMEOUT)
        .unwrap_or_else(|_timeout| panic!("no {lines} lines within {RUN_TIMEOUT:?}"));
    (String::from_utf8(seen).expect("utf-8"), stream)
}

/// `1\n2\n...\nn\n`, what `seq 1 n` prints.
pub fn seq(n: u64) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// Lines a child writes to stderr, read by a thread as they come.
pub struct StderrLines {
    lines: mpsc::Receiver<String>,
    /// Every line seen so far, for failure messages.
    pub seen: Vec<String>,
}

impl StderrLines {
    /// Reads `stderr` line by line in a thread.
    pub fn follow(stderr: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits up to `within` for a line containing `text`, failing the test otherwise.
    pub fn expect(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {text:?} within {within:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }
}
