//! floodwatch: a packet-level flood detector.
//!
//! The pipeline is `capture` (frames from files or interfaces) → `decode` (frame → compact
//! [`decode::PacketRecord`]) → `analyze` (sliding windows, sketches, detectors, attack
//! lifecycle) → `output` (alert sinks, summaries). See ARCHITECTURE.md.

pub mod analyze;
pub mod capture;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod output;
pub mod pipeline;
mod prefetch;
pub mod replay;
pub mod synth;
