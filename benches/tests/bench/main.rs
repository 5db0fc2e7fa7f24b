//! The benchmarks' engines on small inputs: that they run and report
//! what they measure. One behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod audio_loss_bench;
mod call_loss_audio;
mod call_loss_video;
