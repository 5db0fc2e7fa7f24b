//! The real `parley` binary against a server in this process.
//!
//! The server runs the same library code as `parley-server` (whose own
//! binary is tested in the signaling crate), on its own runtime, logging
//! at debug level to a file the test can read. Running the server binary
//! from here would need it built by this same cargo invocation, which a
//! package's tests cannot ask for.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once};

use parley_signaling::store::Store;
use parley_signaling::{AppState, ServerConfig};

/// A server on a loopback port; stops with the test process.
pub struct Server {
    pub url: String,
}

static LOGGING: Once = Once::new();

/// Starts a server over a SQLite file in `data`, logging at debug level to
/// `log` (one server per test process, since logging is process-wide).
pub fn start_server(data: &Path, log: &Path) -> Server {
    std::fs::create_dir_all(data).unwrap();
    let file = std::fs::File::create(log).unwrap();
    LOGGING.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .init();
    });
    let db = format!("sqlite://{}", data.join("parley.db").display());
    let blobs = data.join("blobs");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let store = Store::open(&db).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let config = ServerConfig {
                blob_dir: blobs,
                ..ServerConfig::default()
            };
            let app = parley_signaling::app(AppState::new(store, config));
            axum::serve(listener, app).await.unwrap();
        });
    });
    Server {
        url: format!("http://{}", rx.recv().unwrap()),
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

/// A `parley` process left running, its stderr read line by line.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    name: String,
}

impl Running {
    /// Starts `parley --server URL --data-dir DIR ARGS` with stdin closed.
    pub fn start(name: &str, server: &str, dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .arg("--server")
            .arg(server)
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            name: name.to_string(),
        }
    }

    /// Waits for a stderr line containing `text`.
    pub fn wait_for(&mut self, text: &str, timeout: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{} did not print {text:?} within {timeout:?}:\n{}",
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
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; the exit status and everything printed.
    pub fn finish(mut self, timeout: std::time::Duration) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                self.seen.extend(self.lines.try_iter());
                return (status, self.seen.join("\n"));
            }
            self.seen.extend(self.lines.try_iter());
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} still running after {timeout:?}:\n{}",
                    self.name,
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
