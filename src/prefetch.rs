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

/// Asks for the cache line holding `bytes[at]` to be brought into L2 (nothing past the end, or
/// off x86-64): for data streamed ahead, which should not push the hot tables out of L1.
#[inline(always)]
pub fn prefetch_l2(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = bytes.get(at) {
        // SAFETY: a prefetch of a valid reference's address; it loads nothing architecturally.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>((byte as *const u8).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}
