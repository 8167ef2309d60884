//! floodwatch: a packet-level flood detector.
//!
//! The pipeline is `capture` (frames from files or interfaces) → `decode` (frame → compact
//! [`decode::PacketRecord`]) → `analyze` (sliding windows, sketches, detectors, attack
//! lifecycle) → `output` (alert sinks, summaries). See ARCHITECTURE.md.

#![deny(unsafe_code)]

pub mod aggregate;
pub mod analyze;
pub mod capture;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod output;
pub mod pipeline;
// unsafe: the prefetch instruction.
#[allow(unsafe_code)]
mod prefetch;
pub mod replay;
pub mod telemetry;
