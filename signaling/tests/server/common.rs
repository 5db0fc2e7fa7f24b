//! Starting the real `parley-server` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `parley-server ARGS` and returns it with the URL from its first
/// stdout line.
pub fn spawn_server<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley-server"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("parley-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}
