//! Where decisions go: alert streams, the replay summary, capture files.

pub mod alert;
pub mod notify;
pub mod pcap_writer;
pub mod summary;
pub mod time;
