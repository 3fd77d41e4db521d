//! The real `weir-broker` binary as a child process, for the crash campaign and the other
//! tests that must kill, pause or restart a broker the way an operator's machine would.
//!
//! Owns: finding (and building, if needed) the binary, starting it on a fixed port and data
//! directory, waiting until it listens, `SIGKILL`, `SIGSTOP`/`SIGCONT`, a clean `SIGTERM`
//! stop, and restarting on the same port and directory. Every run's stderr is appended to one
//! log file, which a failing test prints. A `BrokerProcess` that is dropped kills its child,
//! so a panicking test leaves no broker behind.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest a start or a stop may take on a loaded machine before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `weir-broker` binary: `$WEIR_BROKER_BIN` if set, else built (once per test process)
/// with `cargo build -p weir-broker --bin weir-broker` into the target directory this test
/// runs from, so that `cargo nextest run -p weir-tests` on a fresh clone never runs a
/// missing or stale binary.
///
/// # Panics
/// If the build fails or the binary is not where cargo puts it.
pub fn broker_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("WEIR_BROKER_BIN") {
                return PathBuf::from(path);
            }
            // <target>/<profile>/deps/<test binary>
            let exe = std::env::current_exe().expect("path of the test binary");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("test binary lives in <target>/<profile>/deps");
            let target_dir = profile_dir.parent().expect("target directory");
            let mut cargo = Command::new(env!("CARGO"));
            cargo.args([
                "build",
                "--quiet",
                "-p",
                "weir-broker",
                "--bin",
                "weir-broker",
            ]);
            cargo.arg("--target-dir").arg(target_dir);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cargo.arg("--release");
            }
            let status = cargo.status().expect("run cargo build for weir-broker");
            assert!(
                status.success(),
                "cargo build -p weir-broker failed: {status}"
            );
            let binary = profile_dir.join("weir-broker");
            assert!(
                binary.is_file(),
                "weir-broker not found at {} after building it",
                binary.display()
            );
            binary
        })
        .clone()
}

/// A free port on 127.0.0.1 (the broker binds it a moment later; a start that finds it
/// taken fails with a clear message).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// One `weir-broker` process and its restarts, on a fixed data directory and port.
#[derive(Debug)]
pub struct BrokerProcess {
    binary: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    addr: SocketAddr,
    extra_args: Vec<String>,
    /// Further environment variables for every run.
    extra_env: Vec<(String, String)>,
    child: Option<Child>,
    runs: u32,
}

impl BrokerProcess {
    /// Starts the broker on a free port with its data in `data_dir` and its stderr appended to
    /// `log_path`; `extra_args` are further command-line flags.
    ///
    /// # Panics
    /// If it does not start listening within [`START_TIMEOUT`].
    pub fn start(data_dir: &Path, log_path: &Path, extra_args: &[&str]) -> Self {
        let mut broker = Self {
            binary: broker_binary(),
            data_dir: data_dir.to_path_buf(),
            log_path: log_path.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            extra_env: Vec::new(),
            child: None,
            runs: 0,
        };
        broker.spawn();
        broker
    }

    /// As [`Self::start`], with `extra_env` set for this run and every restart.
    ///
    /// # Panics
    /// If it does not start listening within [`START_TIMEOUT`].
    pub fn start_with_env(
        data_dir: &Path,
        log_path: &Path,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Self {
        let mut broker = Self {
            binary: broker_binary(),
            data_dir: data_dir.to_path_buf(),
            log_path: log_path.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            extra_env: extra_env
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            child: None,
            runs: 0,
        };
        broker.spawn();
        broker
    }

    /// Whether a child is running (or stopped by `SIGSTOP`): started, and not killed or
    /// stopped since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The address clients connect to (the same across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port`, for client configurations.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Everything the broker's runs wrote to stderr.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Process id of the running broker.
    ///
    /// # Panics
    /// If it is not running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker is already running");
        self.runs += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the broker log file");
        let start_of_run = log.metadata().map(|m| m.len()).unwrap_or(0);
        writeln!(log, "\n----- weir-broker run {}", self.runs).expect("write the broker log");
        let stderr: File = log.try_clone().expect("clone the broker log file");
        let child = Command::new(&self.binary)
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env(
                "WEIR_LOG",
                std::env::var("WEIR_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env_remove("WEIR_LISTEN")
            .env_remove("WEIR_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        self.child = Some(child);
        // As text (`addr=…`) or as a JSON field (`--log-format json`).
        let expected = [
            format!("addr={}", self.addr),
            format!("\"addr\":\"{}\"", self.addr),
        ];
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "weir-broker exited with {status} while starting:\n{}",
                    self.current_run_log(start_of_run)
                );
            }
            let run_log = self.current_run_log(start_of_run);
            if run_log.contains("weir-broker listening")
                && expected.iter().any(|e| run_log.contains(e))
                && TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "weir-broker did not listen within {START_TIMEOUT:?}:\n{run_log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn current_run_log(&self, from: u64) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(text.len());
        String::from_utf8_lossy(&text[from..]).into_owned()
    }

    /// `SIGKILL` and reap: a crash. The broker must not have exited by itself before.
    ///
    /// # Panics
    /// If it is not running or had already exited.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "weir-broker exited by itself before the kill: {status}\n{}",
                self.log_text()
            );
        }
        child.kill().expect("SIGKILL the broker");
        child.wait().expect("reap the broker");
    }

    /// Sends `signal` (a name `kill` understands, e.g. `STOP`, `CONT`) to the broker.
    ///
    /// # Panics
    /// If `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed: {status}");
    }

    /// Starts the broker again on the same data directory and port (after [`Self::kill9`]
    /// or [`Self::stop`]).
    ///
    /// # Panics
    /// If it is running, or does not start.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// `SIGTERM` and waits for the exit; returns whether it exited with status 0.
    ///
    /// # Panics
    /// If it does not exit within [`START_TIMEOUT`].
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        self.signal_pid(child.id(), "CONT");
        self.signal_pid(child.id(), "TERM");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the broker") {
                return status.success();
            }
            if Instant::now() > deadline {
                let _killed = child.kill();
                let _reaped = child.wait();
                panic!("weir-broker did not exit within {START_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `SIGTERM`, and waits at most `limit` for the exit; returns whether it exited with status
    /// 0 and how long it took.
    ///
    /// # Panics
    /// If it does not exit within `limit` (it is then killed).
    pub fn stop_within(&mut self, limit: Duration) -> (bool, Duration) {
        let mut child = self.child.take().expect("broker is running");
        let started = Instant::now();
        self.signal_pid(child.id(), "TERM");
        loop {
            if let Some(status) = child.try_wait().expect("wait for the broker") {
                return (status.success(), started.elapsed());
            }
            if started.elapsed() > limit {
                let _killed = child.kill();
                let _reaped = child.wait();
                panic!(
                    "weir-broker did not exit within {limit:?} of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal_pid(&self, pid: u32, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed: {status}");
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Also ends a stopped (SIGSTOP) child: SIGKILL works on it.
            if let Err(err) = child.kill() {
                eprintln!("could not kill weir-broker {}: {err}", child.id());
            }
            if let Err(err) = child.wait() {
                eprintln!("could not reap weir-broker: {err}");
            }
        }
    }
}
