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

/// Starts `parley --server URL --data-dir DIR ARGS` and leaves it running,
/// its output collected line by line (and logged next to `dir`).
pub fn spawn(name: &str, server: &str, dir: &Path, args: &[&str]) -> parley_tests::Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
    command
        .arg("--server")
        .arg(server)
        .arg("--data-dir")
        .arg(dir)
        .args(args);
    let log = dir.with_extension(format!("{name}.log"));
    parley_tests::Process::spawn(name, command, &log)
}
