//! Training allocates and frees the same large activation and gradient buffers every step. glibc
//! serves blocks above its mmap threshold (128 KiB at first) with fresh mappings and unmaps them
//! on free, so every step paid page faults and page zeroing for memory it had just returned.
//! Raising the thresholds keeps freed blocks in the heap for the next step. `tlrun bench`: about
//! 10–15% more training images/s on resnet_small and resnet18, peak memory unchanged
//! (docs/performance.md).

/// Call once at start-up, before the first tensor.
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
