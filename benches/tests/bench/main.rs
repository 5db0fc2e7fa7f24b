//! The benchmarks' engines on small inputs: that they run and report
//! what they measure. One behaviour per module.

mod audio_loss_bench;
mod call_loss_audio;
mod call_loss_video;
