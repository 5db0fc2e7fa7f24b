//! Parley's benchmarks, as a library so that tests can run them on small
//! inputs and check their output; the `parley-bench` binary is the front
//! end.
//!
//! - [`audio_loss`]: speech through Opus, RTP, a lossy simulated link and
//!   the jitter buffer, scored with PESQ-WB, per loss model and protection.
//! - [`report`]: a benchmark's CSV, markdown table and SVG plots.
//! - [`signaling_load`]: many devices on one `parley-server`, messages per
//!   second, delivery latency and memory per idle connection.
#![forbid(unsafe_code)]

pub mod audio_loss;
pub mod report;
pub mod signaling_load;
