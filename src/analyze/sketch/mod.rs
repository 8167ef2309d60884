//! Bounded-memory summaries of attacker-controlled streams.

mod hyperloglog;
mod space_saving;

pub use hyperloglog::HyperLogLog;
pub use space_saving::{Counted, SpaceSaving};
