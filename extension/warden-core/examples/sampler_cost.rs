//! Measures the sampler's CPU cost: runs it at a given interval for a few seconds, on this
//! machine's /proc, and prints CPU time used per second of wall time.
//!
//! `cargo run --release -p warden --example sampler_cost -- [interval_ms] [seconds]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

use std::path::Path;
use std::time::{Duration, Instant};

use warden_core::sources::procfs::reader::own_cpu_us;

/// On-CPU time of this thread in microseconds, from the scheduler's precise clock
/// (`getrusage` is sampled at timer ticks and over-charges short, tick-aligned wake-ups).
fn run_time_us() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |ns| ns / 1000)
}
use warden_core::sources::procfs::ProcReader;
use warden_core::sources::sampler::{Exclusions, Sampler};

fn main() {
    let mut args = std::env::args().skip(1);
    let interval_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let me = std::process::id();
    let mut live = Vec::new();
    let mut reader = ProcReader::new(Path::new("/proc"), me);
    reader.list_pids(&mut live);
    let mut sampler = Sampler::new(Path::new("/proc"), me, Exclusions::default());
    sampler.begin(&live, reader.last_pid(), &mut Vec::new());

    let interval = Duration::from_millis(interval_ms);
    let (start, cpu0, run0) = (Instant::now(), own_cpu_us(), run_time_us());
    let mut ticks = 0u64;
    let mut found = Vec::new();
    let mut tick_cpu = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let before = own_cpu_us();
        sampler.tick(&mut found);
        tick_cpu += own_cpu_us() - before;
        ticks += 1;
        std::thread::sleep(interval);
    }
    let wall = start.elapsed().as_secs_f64();
    // The same ticks back to back: wall time per tick is CPU time per tick.
    let burst = Instant::now();
    for _ in 0..1000 {
        sampler.tick(&mut found);
    }
    let per_tick_us = burst.elapsed().as_secs_f64() * 1e6 / 1000.0;
    println!(
        "back-to-back: {per_tick_us:.1} us per tick => {:.3}% of one core at {interval_ms} ms",
        per_tick_us / (interval_ms as f64 * 10.0)
    );
    let cpu_ms = (own_cpu_us() - cpu0) as f64 / 1000.0;
    let run_ms = (run_time_us() - run0) as f64 / 1000.0;
    println!(
        "scheduler run time: {:.2} ms/s ({:.3}% of one core), sleeps and wake-ups included",
        run_ms / wall,
        run_ms / wall / 10.0
    );
    println!(
        "interval {interval_ms} ms: {ticks} ticks in {wall:.1} s, getrusage CPU {:.2} ms/s ({:.3}% of one core), {:.1} us per tick, {} observations",
        cpu_ms / wall,
        cpu_ms / wall / 10.0,
        tick_cpu as f64 / ticks as f64,
        found.len()
    );
}
