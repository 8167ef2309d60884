//! Software prefetch: asks for the cache line of a value a little before it is used, where
//! the hardware prefetcher cannot guess the address or stops at a page boundary.

/// Asks for the cache line holding `item` (nothing for `None`, or off x86-64).
#[inline(always)]
pub fn prefetch<T>(item: Option<&T>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = item {
        // SAFETY: a prefetch of a valid reference's address; it loads nothing architecturally.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((item as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// Asks for the cache line holding `bytes[at]` as data read once (nothing past the end, or off
/// x86-64): a non-temporal prefetch, meant to keep a capture file streamed through the cache
/// from pushing the analyzer's tables out of the cache the two threads share (not measured
/// as such: no cache counters on this VM). Replay of `bench_flood` (5.5 GB) on the AMD EPYC
/// VM, 8 interleaved runs each: median 0.72 s with the lines prefetched into L2, 0.64 s
/// non-temporal; `bench_spoofed`, 5 runs each, 0.63 and 0.59 s.
#[inline(always)]
pub fn prefetch_stream(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = bytes.get(at) {
        // SAFETY: a prefetch of a valid reference's address; it loads nothing architecturally.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_NTA }>((byte as *const u8).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}
