//! The `[capture]` section: the live capture's own settings, read from the config file.

use serde::Deserialize;

/// Which live capture backend reads the interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureBackend {
    /// AF_PACKET with a memory-mapped TPACKET_V3 receive ring (`libc` only).
    #[default]
    Tpacket,
    /// AF_PACKET through `pnet`, one `recvfrom` per packet: the fallback.
    AfPacket,
    /// libpcap through the `pcap` crate (build with `--features libpcap`): BPF filters,
    /// buffer size, kernel drop counters.
    Libpcap,
}

/// The `[capture]` section: what the live daemon listens on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSettings {
    pub interface: Option<String>,
    #[serde(default)]
    pub backend: CaptureBackend,
    /// BPF filter expression (libpcap backend).
    pub filter: Option<String>,
    /// Kernel capture buffer in MiB (libpcap backend).
    pub buffer_mb: Option<u32>,
    /// Receive ring of the tpacket backend: block size in KiB (a multiple of the page
    /// size; default 1024), number of blocks (default 64), and how long a block that is not
    /// full waits before it is handed over, in ms (default 10).
    pub ring_block_kib: Option<u32>,
    pub ring_blocks: Option<u32>,
    pub ring_block_timeout_ms: Option<u32>,
    /// Promiscuous mode (tpacket backend; default on).
    pub promiscuous: Option<bool>,
    /// Capture threads, each with its own ring in one PACKET_FANOUT group (tpacket backend;
    /// default 1).
    pub threads: Option<u16>,
}
