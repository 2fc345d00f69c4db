//! The allocator's one setting for large records: with glibc, a block of 256 KiB or more gets a
//! mapping of its own and goes back to the system when freed. (glibc's default raises that
//! threshold up to 32 MiB after the first such block is freed; records of hundreds of KB then
//! come from the threads' arenas, and what one arena freed stays with the process: resident
//! memory would grow past the memory budget with the number of threads.)

/// The size from which a block is mapped on its own.
const MMAP_THRESHOLD: i32 = 256 * 1024;

/// Fixes the mapping threshold; call it first, before any thread starts.
#[allow(unsafe_code)]
pub(crate) fn map_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator; it is called before the
    // process starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
