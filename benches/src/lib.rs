//! Parley's benchmarks, as a library so that tests can run them on small
//! inputs and check their output; the `parley-bench` binary is the front
//! end.
//!
//! - [`audio_loss`]: speech through Opus, RTP, a lossy simulated link and
//!   the jitter buffer, scored with PESQ-WB, per loss model and protection.
//! - [`call_loss`]: a whole 1:1 call (Opus or H.264, SFrame, str0m on
//!   both ends, jitter buffer) over a simulated lossy network in virtual
//!   time, per loss model, RTT, jitter and protection.
//! - [`report`]: a benchmark's CSV, markdown table and SVG plots.
//! - [`signaling_load`]: many devices on one `parley-server`, messages per
//!   second, delivery latency and memory per idle connection.
// Benchmarks time real work on the wall clock and pick the origin of virtual time.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

pub mod audio_loss;
pub mod call_loss;
pub mod report;
pub mod signaling_load;

use std::sync::Mutex;

/// Runs `work` on every job on `threads` worker threads (jobs taken in
/// order as workers free up); results come back in job order, or the
/// first error in job order.
pub fn run_parallel<J: Sync, R: Send, E: Send>(
    jobs: &[J],
    threads: usize,
    work: impl Fn(&J) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<R, E>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("no panics while held");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(job) = jobs.get(i) else { break };
                    let result = work(job);
                    results.lock().expect("no panics while held")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("workers finished")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
