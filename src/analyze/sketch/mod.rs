//! Bounded-memory summaries of attacker-controlled streams.

mod hyperloglog;
mod port_tally;
mod space_saving;

pub use hyperloglog::HyperLogLog;
pub use port_tally::PortTally;
pub use space_saving::{Counted, SpaceSaving};
