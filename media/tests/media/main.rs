//! The media core's behaviours: codecs, files, jitter buffer, network
//! simulator, scoring. One behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod common;

mod downscale_half;
mod h264_nal_units;
mod h264_rate_control;
mod h264_round_trip;
mod jitter_buffer_adapts_to_jitter;
mod jitter_buffer_bad_input;
mod jitter_buffer_fec_recovery;
mod netsim_bandwidth_limit;
mod netsim_bernoulli_loss;
mod netsim_delay_jitter_reorder;
mod netsim_gilbert_bursts;
mod opus_round_trip;
mod quality_scores;
mod rgb_to_i420;
mod scaled_picture;
mod wav_files;
mod y4m_files;
