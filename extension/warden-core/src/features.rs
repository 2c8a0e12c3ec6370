//! The feature vector: a [`FeatureRecord`] reduced to [`N`] numbers, in a fixed order that
//! the baseline, the rules and the shipped model share. Byte counts are taken as
//! `ln(1 + x)` so that "ten times more" is the same step at any size. Any change to a
//! name, its order, its transform or its meaning bumps [`VECTOR_VERSION`].

use crate::schema::FeatureRecord;
use crate::schema::Observation;
use crate::schema::Status;

/// Version of the names, order, transforms and meaning below.
pub const VECTOR_VERSION: u32 = 2;

/// How a raw figure becomes a vector value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Taken as is.
    Linear,
    /// `ln(1 + x)`.
    Log1p,
    /// `ln(1 + x / 1024)`: bytes, on a KiB scale.
    LogKib,
    /// `sign(x) · ln(1 + |x| / 1024)`, for signed byte deltas.
    SignedLogKib,
}

/// One feature: its name, transform and the smallest scale the baseline may use for it
/// (in vector units), so a feature that never varied does not turn a tiny change into a
/// huge z-score.
#[derive(Debug, Clone, Copy)]
pub struct FeatureSpec {
    /// Name, as in docs/findings.md.
    pub name: &'static str,
    /// Transform from the raw figure.
    pub transform: Transform,
    /// Absolute floor of the baseline scale.
    pub min_scale: f32,
    /// Floor of the scale relative to the baseline median (`rel · |median|`).
    pub rel_scale: f32,
}

macro_rules! features {
    ($($idx:ident = $i:literal : $name:literal, $t:ident, $min:literal, $rel:literal;)*) => {
        /// Index of each feature in the vector.
        pub mod idx {
            $(#[doc = concat!("`", $name, "`")] pub const $idx: usize = $i;)*
        }
        /// Every feature, in vector order.
        pub const FEATURES: [FeatureSpec; N] = [$(FeatureSpec {
            name: $name,
            transform: Transform::$t,
            min_scale: $min,
            rel_scale: $rel,
        },)*];
        /// Feature names, in vector order.
        pub const FEATURE_NAMES: [&str; N] = [$($name,)*];
    };
}

/// Number of features.
pub const N: usize = 28;

features! {
    DURATION_MS = 0: "duration_ms", Linear, 20.0, 0.25;
    CPU_MS = 1: "cpu_ms", Linear, 20.0, 0.25;
    CPU_SHARE = 2: "cpu_share", Linear, 0.1, 0.25;
    RSS_KB = 3: "rss_kb", Linear, 4096.0, 0.1;
    MAX_MEMORY_MB = 4: "max_memory_used_mb", Linear, 4.0, 0.1;
    TASKS_CREATED = 5: "tasks_created", Linear, 1.0, 0.25;
    NEW_PROCESSES = 6: "new_processes", Linear, 1.0, 0.25;
    EXECS = 7: "execs", Linear, 1.0, 0.25;
    EXEC_FROM_TMP = 8: "exec_from_tmp", Linear, 0.5, 0.25;
    LEFT_RUNNING = 9: "processes_left_running", Linear, 0.5, 0.25;
    SHELLS = 10: "shells_spawned", Linear, 0.5, 0.25;
    TCP_OUTBOUND = 11: "tcp_outbound_opens", Linear, 1.0, 0.25;
    NEW_ENDPOINTS = 12: "new_endpoints", Linear, 1.0, 0.25;
    LISTENERS = 13: "listeners_opened", Linear, 0.5, 0.25;
    MINING_PORTS = 14: "mining_port_endpoints", Linear, 0.5, 0.25;
    UDP_OUT = 15: "udp_out_datagrams", Log1p, 0.7, 0.1;
    NET_TX = 16: "net_tx_bytes", LogKib, 0.7, 0.05;
    NET_RX = 17: "net_rx_bytes", LogKib, 0.7, 0.05;
    PRODUCED = 18: "produced_bytes", LogKib, 0.7, 0.05;
    LOG_LINES = 19: "log.lines", Log1p, 0.7, 0.1;
    ERROR_LINES = 20: "log.error_lines", Linear, 1.0, 0.25;
    TRACEBACKS = 21: "log.tracebacks", Linear, 0.5, 0.25;
    TMP_FILES_CREATED = 22: "tmp_files_created", Linear, 1.0, 0.25;
    TMP_BYTES_DELTA = 23: "tmp_bytes_delta", SignedLogKib, 1.0, 0.1;
    FOREIGN_PROCESSES = 24: "foreign_processes", Linear, 0.5, 0.25;
    STATUS_ERROR = 25: "status_error", Linear, 0.5, 0.0;
    STATUS_TIMEOUT = 26: "status_timeout", Linear, 0.5, 0.0;
    COLD = 27: "cold", Linear, 0.5, 0.0;
}

/// Executable names taken to be shells.
pub const SHELLS: [&str; 9] = [
    "sh", "dash", "bash", "ash", "zsh", "ksh", "mksh", "busybox", "fish",
];

/// Remote ports commonly used by mining pools (stratum). A hint, not proof: the list is
/// documented in docs/findings.md.
pub const MINING_PORTS: [u16; 10] = [
    3333, 3334, 5555, 6666, 7777, 14433, 14444, 20535, 45560, 45700,
];

/// Whether an executable path names a shell.
pub fn is_shell(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    // A deleted executable shows as "path (deleted)".
    let base = base.split(' ').next().unwrap_or(base);
    SHELLS.contains(&base)
}

/// Whether a remote port is on the mining-pool list.
pub fn is_mining_port(port: u16) -> bool {
    MINING_PORTS.contains(&port)
}

const KIB: f64 = 1024.0;
/// Shortest duration `cpu_share` is taken over (ms).
const CPU_SHARE_MIN_MS: f64 = 100.0;

/// Applies a feature's transform to a raw figure.
pub fn transform(i: usize, raw: f64) -> f32 {
    let v = match FEATURES.get(i).map(|f| f.transform) {
        Some(Transform::Log1p) => raw.max(0.0).ln_1p(),
        Some(Transform::LogKib) => (raw.max(0.0) / KIB).ln_1p(),
        Some(Transform::SignedLogKib) => raw.signum() * (raw.abs() / KIB).ln_1p(),
        _ => raw,
    };
    v as f32
}

/// The raw figure a vector value stands for (inverse of [`transform`]).
pub fn to_raw(i: usize, v: f32) -> f64 {
    let v = f64::from(v);
    match FEATURES.get(i).map(|f| f.transform) {
        Some(Transform::Log1p) => v.max(0.0).exp_m1(),
        Some(Transform::LogKib) => v.max(0.0).exp_m1() * KIB,
        Some(Transform::SignedLogKib) => v.signum() * v.abs().exp_m1() * KIB,
        _ => v,
    }
}

/// Reduces a record to its vector. Missing platform figures count as 0.
pub fn vector(r: &FeatureRecord) -> [f32; N] {
    let raw = raw_values(r);
    let mut out = [0f32; N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = transform(i, raw[i]);
    }
    out
}

/// The figures behind the vector, in raw units (before the transforms).
pub fn raw_values(r: &FeatureRecord) -> [f64; N] {
    let p = &r.platform;
    let c = &r.counters;
    let o = &r.observed;
    let duration = p.duration_ms.or(p.runtime_duration_ms).unwrap_or(0.0);
    let cpu = (c.cpu_user_ms + c.cpu_system_ms) as f64;
    let (mut shells, mut mining) = (0u32, 0u32);
    for e in &r.evidence {
        match e {
            Observation::Process {
                exe,
                alive_at_end: false,
                ..
            } if is_shell(exe) => shells += 1,
            Observation::Endpoint {
                addr,
                listen: false,
                ..
            } if is_mining_port(addr.port()) => mining += 1,
            _ => {}
        }
    }
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut raw = [0f64; N];
    raw[idx::DURATION_MS] = duration;
    raw[idx::CPU_MS] = cpu;
    // CPU time comes in 10 ms clock ticks: over a few milliseconds one tick more or less
    // would swing the share between 0 and 2, so short invocations are taken as 100 ms.
    raw[idx::CPU_SHARE] = (cpu / duration.max(CPU_SHARE_MIN_MS)).min(8.0);
    raw[idx::RSS_KB] = r.gauges.rss_kb as f64;
    raw[idx::MAX_MEMORY_MB] = p.max_memory_used_mb.unwrap_or(0) as f64;
    raw[idx::TASKS_CREATED] = c.tasks_created as f64;
    raw[idx::NEW_PROCESSES] = f64::from(o.new_processes);
    raw[idx::EXECS] = f64::from(o.execs);
    raw[idx::EXEC_FROM_TMP] = f64::from(o.exec_from_tmp);
    raw[idx::LEFT_RUNNING] = f64::from(o.processes_left_running);
    raw[idx::SHELLS] = f64::from(shells);
    raw[idx::TCP_OUTBOUND] = c.tcp_outbound_opens as f64;
    raw[idx::NEW_ENDPOINTS] = f64::from(o.new_endpoints);
    raw[idx::LISTENERS] = f64::from(o.listeners_opened);
    raw[idx::MINING_PORTS] = f64::from(mining);
    raw[idx::UDP_OUT] = c.udp_out_datagrams as f64;
    raw[idx::NET_TX] = c.net_tx_bytes as f64;
    raw[idx::NET_RX] = c.net_rx_bytes as f64;
    raw[idx::PRODUCED] = p.produced_bytes.unwrap_or(0) as f64;
    raw[idx::LOG_LINES] = r.log.lines as f64;
    raw[idx::ERROR_LINES] = r.log.error_lines as f64;
    raw[idx::TRACEBACKS] = r.log.tracebacks as f64;
    raw[idx::TMP_FILES_CREATED] = f64::from(o.tmp_files_created);
    raw[idx::TMP_BYTES_DELTA] = c.tmp_bytes_delta as f64;
    raw[idx::FOREIGN_PROCESSES] = f64::from(r.gauges.foreign_processes);
    raw[idx::STATUS_ERROR] = flag(matches!(r.status, Status::Error | Status::Failure));
    raw[idx::STATUS_TIMEOUT] = flag(r.status == Status::Timeout);
    raw[idx::COLD] = flag(r.cold);
    raw
}

#[cfg(test)]
mod tests;
