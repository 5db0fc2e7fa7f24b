//! The real `parley` binary against a real `parley-server` process.
//!
//! Both are the binaries `cargo test --workspace` builds (see
//! `parley_testkit::binary`); the server logs at debug level to a file the
//! test can read.

use std::path::Path;
use std::process::{Command, Stdio};

use parley_testkit::Process;

/// A `parley-server` on a loopback port; stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _process: Process,
}

/// Starts `parley-server` over a SQLite file in `data` (no relay, no SFU:
/// these tests call directly over loopback), logging at debug level to
/// `log`.
pub fn start_server(data: &Path, log: &Path) -> Server {
    let mut command = Command::new(parley_testkit::binary("parley-server"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-udp",
            "--no-sfu",
            "--data-dir",
        ])
        .arg(data)
        .env("RUST_LOG", "debug");
    let (process, url) = parley_testkit::start_server(command, log);
    Server {
        url,
        _process: process,
    }
}

/// Runs `parley --server URL --data-dir DIR ARGS` with stdin closed and
/// returns its stdout; panics with its stderr if it fails.
pub fn parley(server: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("--server")
        .arg(server)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "parley {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `parley --server URL --data-dir DIR ARGS` and leaves it running,
/// its output collected line by line (and logged next to `dir`).
pub fn spawn(name: &str, server: &str, dir: &Path, args: &[&str]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
    command
        .arg("--server")
        .arg(server)
        .arg("--data-dir")
        .arg(dir)
        .args(args);
    let log = dir.with_extension(format!("{name}.log"));
    Process::spawn(name, command, &log)
}
