//! The machinery that turns traffic sources into one time-ordered stream of frames.
//!
//! A scenario is a handful of [`TrafficSource`]s (background web browsing, DNS, a flood, ...).
//! Each source produces its own frames in time order, usually driven by a small [`EventQueue`]
//! of packets it has scheduled (a SYN-ACK due 40 µs after a SYN, the next arrival, ...).
//! [`merge`] interleaves the sources by time. Nothing holds more than the events in flight, so a
//! scenario can stream any number of packets to a writer.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;

/// Nanoseconds in a second.
pub const NS_PER_SECOND: i64 = 1_000_000_000;
/// 2026-01-15T12:00:00Z, the start of every scenario, in nanoseconds since the Unix epoch.
pub const BASE_TIME_NS: i64 = 1_768_478_400 * NS_PER_SECOND;

/// Gap between consecutive fragments of one datagram (back to back on a fast link).
pub const FRAGMENT_GAP_NS: i64 = 2_000;

/// The absolute time `ms` milliseconds after [`BASE_TIME_NS`].
pub const fn at_ms(ms: i64) -> i64 {
    BASE_TIME_NS + ms * 1_000_000
}

/// The mean gap between events that happen `per_second` times a second.
pub fn gap_ns(per_second: u32) -> i64 {
    NS_PER_SECOND / i64::from(per_second.max(1))
}

/// A span of time: from `start` (included) to `end` (excluded), in ns since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// The window from `start_ms` to `end_ms` after [`BASE_TIME_NS`].
    pub const fn ms(start_ms: i64, end_ms: i64) -> Window {
        Window { start: at_ms(start_ms), end: at_ms(end_ms) }
    }

    /// `time` when it falls inside the window.
    pub fn admit(&self, time: i64) -> Option<i64> {
        (self.start..self.end).contains(&time).then_some(time)
    }
}

/// What a frame is in the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Anything that is not attack traffic toward a victim (including a victim's answers).
    Background,
    /// A packet of the attack with this index in the scenario's attack list.
    Attack(usize),
}

/// A producer of frames in non-decreasing time order.
pub trait TrafficSource {
    /// When the next frame is due, or `None` when the source is exhausted.
    fn next_time(&self) -> Option<i64>;

    /// Writes the next frame into `frame` and returns its time (the one [`Self::next_time`]
    /// announced) and its role; `None` when exhausted.
    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)>;
}

/// Interleaves `sources` by time and hands every frame to `emit`. Ties go to the source listed
/// first, so the order is fully deterministic. A source that cannot build a frame (a
/// configuration pairing an IPv4 with an IPv6 host) leaves it empty, and it is dropped.
pub fn merge<F>(sources: &mut [Box<dyn TrafficSource>], mut emit: F) -> io::Result<()>
where
    F: FnMut(i64, Role, &[u8]) -> io::Result<()>,
{
    let mut frame = Vec::with_capacity(4096);
    loop {
        let earliest =
            sources.iter().enumerate().filter_map(|(index, source)| source.next_time().map(|time| (time, index))).min();
        let Some((_, index)) = earliest else {
            return Ok(());
        };
        match sources[index].next_frame(&mut frame) {
            Some((time, role)) if !frame.is_empty() => emit(time, role, &frame)?,
            _ => {}
        }
    }
}

/// Events ordered by time, then by the order they were scheduled in.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    scheduled: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::new(), scheduled: 0 }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `time`.
    pub fn push(&mut self, time: i64, event: E) {
        self.heap.push(Scheduled { time, order: self.scheduled, event });
        self.scheduled += 1;
    }

    /// The time of the earliest event.
    pub fn next_time(&self) -> Option<i64> {
        self.heap.peek().map(|scheduled| scheduled.time)
    }

    /// Removes and returns the earliest event.
    pub fn pop(&mut self) -> Option<(i64, E)> {
        self.heap.pop().map(|scheduled| (scheduled.time, scheduled.event))
    }
}

#[derive(Debug)]
struct Scheduled<E> {
    time: i64,
    order: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.order) == (other.time, other.order)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.order).cmp(&(self.time, self.order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Emits one frame (its own id as the only byte) at each listed time.
    struct Fixed {
        id: u8,
        times: Vec<i64>,
    }

    impl TrafficSource for Fixed {
        fn next_time(&self) -> Option<i64> {
            self.times.first().copied()
        }

        fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
            let time = self.next_time()?;
            self.times.remove(0);
            frame.clear();
            frame.push(self.id);
            Some((time, Role::Background))
        }
    }

    #[test]
    fn merge_orders_by_time_then_source() {
        let mut sources: Vec<Box<dyn TrafficSource>> =
            vec![Box::new(Fixed { id: 1, times: vec![5, 10, 20] }), Box::new(Fixed { id: 2, times: vec![1, 10, 15] })];
        let mut seen = Vec::new();
        merge(&mut sources, |time, _, frame| {
            seen.push((time, frame[0]));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(1, 2), (5, 1), (10, 1), (10, 2), (15, 2), (20, 1)]);
    }

    #[test]
    fn queue_pops_in_time_then_insertion_order() {
        let mut queue = EventQueue::default();
        queue.push(30, 'c');
        queue.push(10, 'a');
        queue.push(30, 'd');
        queue.push(20, 'b');
        assert_eq!(queue.next_time(), Some(10));
        let order: Vec<char> = std::iter::from_fn(|| queue.pop().map(|(_, event)| event)).collect();
        assert_eq!(order, vec!['a', 'b', 'c', 'd']);
    }

    #[test]
    fn base_time_is_the_documented_instant() {
        // 2026-01-15 is day 20,468 since 1970-01-01.
        assert_eq!(BASE_TIME_NS, (20_468 * 86_400 + 12 * 3_600) * NS_PER_SECOND);
        assert_eq!(Window::ms(0, 10).admit(at_ms(10)), None);
        assert_eq!(Window::ms(0, 10).admit(at_ms(9)), Some(at_ms(9)));
    }
}
