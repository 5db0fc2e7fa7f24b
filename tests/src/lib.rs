//! Helpers for the workspace's end-to-end tests: real `parley-server` and
//! `parley` processes, in network namespaces when a test wants "two
//! machines". Tests of a single crate stay in that crate's own `tests/`.
//!
//! The binaries are the ones `cargo test --workspace` builds next to the
//! test executable (`target/<profile>/`); a package's tests cannot ask
//! cargo for another package's binaries, so running this crate's tests
//! alone needs `cargo build --bins` first, and the helpers say so.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The path of a workspace binary built beside this test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (or `cargo test --workspace`) first",
        path.display()
    );
    path
}

/// A network namespace with a name of its own; deleted on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace with its loopback up.
    pub fn new(name: &str) -> Self {
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        run(Command::new("ip").args(["netns", "add", name]));
        let ns = Self {
            name: name.to_string(),
        };
        run(ns.command("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(program.as_ref());
        command
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins two namespaces with a veth pair: `a` gets `a_ip`, `b` gets
/// `b_ip`, both /24. (Interface names are `<a>-<b>`, so keep namespace
/// names to 7 characters.)
pub fn link(a: &NetNs, a_ip: &str, b: &NetNs, b_ip: &str) {
    let (va, vb) = (
        format!("{}-{}", a.name(), b.name()),
        format!("{}-{}", b.name(), a.name()),
    );
    run(Command::new("ip").args([
        "link",
        "add",
        &va,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        &vb,
        "netns",
        b.name(),
    ]));
    for (ns, dev, ip) in [(a, &va, a_ip), (b, &vb, b_ip)] {
        run(ns
            .command("ip")
            .args(["addr", "add", &format!("{ip}/24"), "dev", dev]));
        run(ns.command("ip").args(["link", "set", dev, "up"]));
    }
}

/// Routes everything `ns` does not know through `gateway`.
pub fn default_route(ns: &NetNs, gateway: &str) {
    run(ns
        .command("ip")
        .args(["route", "add", "default", "via", gateway]));
}

/// Whether this machine lets the test make namespaces (root, iproute2).
pub fn namespaces_available() -> Result<(), String> {
    let probe = format!("parley-probe-{}", std::process::id());
    let out = Command::new("ip")
        .args(["netns", "add", &probe])
        .output()
        .map_err(|e| format!("`ip` not runnable: {e}"))?;
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("spawning a setup command");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running process whose stderr lines are collected (and also written to
/// a log file for when a test fails).
pub struct Process {
    /// The child.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    name: String,
}

impl Process {
    /// Starts `command` with stdin closed, stdout and stderr read by
    /// threads into one line stream, and a copy in `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(
            std::fs::File::create(log).expect("log file"),
        ));
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [stdout, stderr] {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    use std::io::Write;
                    let _ = writeln!(log.lock().unwrap(), "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
            name: name.to_string(),
        }
    }

    /// Waits for a line containing `text`; returns it.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
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
                    "{} did not print {text:?} within {timeout:?}; it printed:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends SIGINT, as Ctrl-C on a terminal does.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill is installed");
        assert!(status.success(), "could not signal {}", self.name);
    }

    /// Waits for the process to exit; its output so far.
    pub fn wait(&mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for a child") {
                // Let the reader threads finish.
                std::thread::sleep(Duration::from_millis(100));
                self.seen.extend(self.lines.try_iter());
                return (status, self.seen.join("\n"));
            }
            self.seen.extend(self.lines.try_iter());
            assert!(
                Instant::now() < deadline,
                "{} still running after {timeout:?}; it printed:\n{}",
                self.name,
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `parley-server` from `command` (which names the binary and its
/// arguments), logging to `log`; returns the process and its HTTP URL.
pub fn start_server(command: Command, log: &Path) -> (Process, String) {
    let mut server = Process::spawn("parley-server", command, log);
    let line = server.wait_for("listening on", Duration::from_secs(20));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the server prints its URL")
        .to_string();
    (server, url)
}

/// The last line of a `--stats-json` file: the call's summary.
pub fn summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let last = text.lines().last().expect("stats file is empty");
    let value: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(value["type"], "summary", "{last}");
    value
}

/// Writes `seconds` of the numbered test pattern at `width` x `height`,
/// 30 fps, numbered from `first`, as a Y4M file.
pub fn write_pattern(path: &Path, (width, height): (usize, usize), first: u64, seconds: u64) {
    use parley_media::test_pattern::TestPatternSource;
    use parley_media::video::{FrameRate, VideoSink};
    use parley_media::y4m_file::{Y4mHeader, Y4mSink};
    let header = Y4mHeader {
        width,
        height,
        frame_rate: FrameRate::fps(30),
    };
    let mut sink = Y4mSink::create(path, header).unwrap();
    let pattern = TestPatternSource::new(width, height, FrameRate::fps(30)).unwrap();
    for i in 0..seconds * 30 {
        sink.write_frame(&pattern.frame(first + i)).unwrap();
    }
}
