//! Which SYNs led to a completed TCP handshake, in bounded memory.
//!
//! A SYN-ACK from a server records the acknowledgment number it expects; the client's
//! bare ACK carrying that number completes the handshake. The table is direct-mapped by a
//! keyed hash: a flood overwrites entries, which can only make SYNs look *less* answered,
//! never more, so an attacker cannot use it to hide a flood.

pub struct HandshakeTable {
    slots: Vec<u64>,
    mask: usize,
}

impl HandshakeTable {
    pub fn new(slots_log2: u32) -> HandshakeTable {
        let n = 1usize << slots_log2;
        HandshakeTable { slots: vec![0; n], mask: n - 1 }
    }

    /// A server sent a SYN-ACK; `hash` covers the connection and the ACK number it expects.
    #[inline]
    pub fn expect(&mut self, hash: u64) {
        self.slots[hash as usize & self.mask] = hash | 1;
    }

    /// A client sent a bare ACK; true if it completes an expected handshake.
    #[inline]
    pub fn complete(&mut self, hash: u64) -> bool {
        let slot = &mut self.slots[hash as usize & self.mask];
        if *slot == hash | 1 {
            *slot = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_once() {
        let mut t = HandshakeTable::new(8);
        t.expect(0xabcdef00);
        assert!(!t.complete(0xabcdef02));
        assert!(t.complete(0xabcdef00));
        assert!(!t.complete(0xabcdef00));
    }
}
