//! The last packets seen, so that a victim's tracker can start with the sources of the
//! whole window once its rate draws attention, not only those that come after.
//!
//! The ring (65,536 records, 4 MiB) is written once per counted packet and read only when a
//! watch starts. Written through the cache, it pushed the victim table, handshake table and
//! trackers out of L2 all the time (measured: a quarter of the analysis time on the benign
//! background of `bench_mix`). Records are therefore packed into one cache line each, free of
//! padding, and written with streaming (non-temporal) stores that bypass the cache.

use crate::decode::{Fragment, IpKey, L4State, PacketRecord};

/// One packed record: eight words, one cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([u64; 8]);

const _: () = assert!(std::mem::size_of::<Line>() == 64);

impl Line {
    #[inline(always)]
    fn pack(p: &PacketRecord) -> Line {
        Line([
            p.src.0 as u64,
            (p.src.0 >> 64) as u64,
            p.dst.0 as u64,
            (p.dst.0 >> 64) as u64,
            p.ts_ns as u64,
            u64::from(p.wire_len) | u64::from(p.tcp_seq) << 32,
            u64::from(p.tcp_ack) | u64::from(p.src_port) << 32 | u64::from(p.dst_port) << 48,
            u64::from(p.weight)
                | u64::from(p.protocol) << 16
                | u64::from(p.ttl) << 24
                | u64::from(fragment_code(p.fragment)) << 32
                | u64::from(l4_code(p.l4)) << 40
                | u64::from(p.tcp_flags) << 48
                | u64::from(p.icmp_type) << 56,
        ])
    }

    fn unpack(&self) -> PacketRecord {
        let w = &self.0;
        let byte = |word: u64, at: u32| (word >> at) as u8;
        PacketRecord {
            ts_ns: w[4] as i64,
            wire_len: w[5] as u32,
            src: IpKey(u128::from(w[0]) | u128::from(w[1]) << 64),
            dst: IpKey(u128::from(w[2]) | u128::from(w[3]) << 64),
            protocol: byte(w[7], 16),
            ttl: byte(w[7], 24),
            fragment: match byte(w[7], 32) {
                1 => Fragment::First,
                2 => Fragment::Later,
                _ => Fragment::Whole,
            },
            l4: match byte(w[7], 40) {
                0 => L4State::Present,
                2 => L4State::Truncated,
                3 => L4State::Summarized,
                _ => L4State::Absent,
            },
            src_port: (w[6] >> 32) as u16,
            dst_port: (w[6] >> 48) as u16,
            tcp_flags: byte(w[7], 48),
            tcp_seq: (w[5] >> 32) as u32,
            tcp_ack: w[6] as u32,
            icmp_type: byte(w[7], 56),
            weight: w[7] as u16,
        }
    }

    /// Writes `self` over `dst` without bringing that line into the cache.
    #[inline(always)]
    fn stream_to(self, dst: &mut Line) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{__m128i, _mm_set_epi64x, _mm_stream_si128};
            let base = (dst as *mut Line).cast::<__m128i>();
            for i in 0..4 {
                let (lo, hi) = (self.0[2 * i] as i64, self.0[2 * i + 1] as i64);
                // SAFETY: `base` comes from `&mut Line`: valid for writes of 64 bytes and
                // aligned to 64, so each of the four 16-byte stores is in bounds and aligned
                // as MOVNTDQ requires. Streaming stores are seen by this thread in program
                // order; handing the analyzer to another thread goes through std's
                // synchronisation (locked instructions), which orders them too.
                #[allow(unused_unsafe)]
                unsafe {
                    _mm_stream_si128(base.add(i), _mm_set_epi64x(hi, lo));
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            *dst = self;
        }
    }
}

fn fragment_code(f: Fragment) -> u8 {
    match f {
        Fragment::Whole => 0,
        Fragment::First => 1,
        Fragment::Later => 2,
    }
}

fn l4_code(l: L4State) -> u8 {
    match l {
        L4State::Present => 0,
        L4State::Absent => 1,
        L4State::Truncated => 2,
        L4State::Summarized => 3,
    }
}

pub struct RecentPackets {
    ring: Vec<Line>,
    next: usize,
    filled: bool,
}

impl RecentPackets {
    pub fn new(capacity: usize) -> RecentPackets {
        let empty = Line::pack(&PacketRecord::default());
        RecentPackets { ring: vec![empty; capacity.max(1)], next: 0, filled: false }
    }

    #[inline]
    pub fn push(&mut self, p: &PacketRecord) {
        Line::pack(p).stream_to(&mut self.ring[self.next]);
        self.next += 1;
        if self.next == self.ring.len() {
            self.next = 0;
            self.filled = true;
        }
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = PacketRecord> + '_ {
        let (before, after) = self.lines();
        after.iter().chain(before.iter()).map(Line::unpack)
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = PacketRecord> + '_ {
        let (before, after) = self.lines();
        before.iter().rev().chain(after.iter().rev()).map(Line::unpack)
    }

    /// The records written since the ring last wrapped, and the older ones after them.
    fn lines(&self) -> (&[Line], &[Line]) {
        // The streaming stores are weakly ordered: fence them before reading back.
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `_mm_sfence` has no preconditions; SSE is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_sfence()
        };
        let (before, after) = self.ring.split_at(self.next);
        (before, if self.filled { after } else { &[] })
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
        let newest: Vec<i64> = r.newest_first().map(|p| p.ts_ns).collect();
        assert_eq!(newest, vec![5, 4, 3]);
    }

    #[test]
    fn records_come_back_unchanged() {
        let mut r = RecentPackets::new(8);
        let records: Vec<PacketRecord> = [
            (Fragment::Whole, L4State::Present),
            (Fragment::First, L4State::Truncated),
            (Fragment::Later, L4State::Absent),
            (Fragment::Whole, L4State::Summarized),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (fragment, l4))| PacketRecord {
            ts_ns: -1_000_000_007 * (i as i64 + 1),
            wire_len: u32::MAX - i as u32,
            src: IpKey(u128::MAX - i as u128),
            dst: IpKey(0x2001_0db8_0000_0000_0000_0000_0000_0001 + i as u128),
            protocol: 17 + i as u8,
            ttl: 255 - i as u8,
            fragment,
            l4,
            src_port: 65_535 - i as u16,
            dst_port: 53 + i as u16,
            tcp_flags: 0xff - i as u8,
            tcp_seq: 0xdead_beef + i as u32,
            tcp_ack: 0xfeed_f00d - i as u32,
            icmp_type: 128 + i as u8,
            weight: [1, 1_000, u16::MAX, 7][i],
        })
        .collect();
        for p in &records {
            r.push(p);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), records);
    }
}
