//! The last packets seen, so that a victim's tracker can start with the sources of the
//! whole window once its rate draws attention, not only those that come after.

use crate::decode::PacketRecord;

pub struct RecentPackets {
    ring: Vec<PacketRecord>,
    next: usize,
    filled: bool,
}

impl RecentPackets {
    pub fn new(capacity: usize) -> RecentPackets {
        RecentPackets { ring: vec![PacketRecord::default(); capacity.max(1)], next: 0, filled: false }
    }

    #[inline]
    pub fn push(&mut self, p: &PacketRecord) {
        self.ring[self.next] = *p;
        self.next += 1;
        if self.next == self.ring.len() {
            self.next = 0;
            self.filled = true;
        }
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &PacketRecord> {
        let (before, after) = self.ring.split_at(self.next);
        let older: &[PacketRecord] = if self.filled { after } else { &[] };
        older.iter().chain(before.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_oldest_first_after_wrapping() {
        let mut r = RecentPackets::new(3);
        for ts in 1..=5 {
            r.push(&PacketRecord { ts_ns: ts, ..Default::default() });
        }
        let seen: Vec<i64> = r.iter().map(|p| p.ts_ns).collect();
        assert_eq!(seen, vec![3, 4, 5]);
    }
}
