//! Network namespaces as "machines": each has its own loopback and
//! addresses, joined by veth pairs. Needs root and iproute2; tests that
//! use them say so first with [`namespaces_available`].

use std::process::Command;

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
    // Unique per call: tests in one binary probe at the same time.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = format!("parley-probe-{}-{n}", std::process::id());
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

pub(crate) fn run(command: &mut Command) {
    let out = command.output().expect("spawning a setup command");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
