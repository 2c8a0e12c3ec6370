//! The probe's one system call that no safe wrapper offers it (it depends on libc only): the
//! only module of this crate that may use `unsafe`.
#![allow(unsafe_code)]

use std::time::Duration;

/// CPU time this thread has used so far.
pub(crate) fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
