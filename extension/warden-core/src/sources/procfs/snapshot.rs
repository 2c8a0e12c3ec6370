//! A snapshot of cumulative counters, and the difference between two of them.
//!
//! Snapshots are taken at each INVOKE and at SHUTDOWN. Nothing runs while the environment
//! is frozen, so the difference between two consecutive snapshots is exactly what one
//! invocation (and its post-runtime tail) did.

use super::own_traffic::OwnNet;
use crate::schema::CounterDelta;
use crate::sources::scratch::TmpUsage;

/// Cumulative counters and gauges of every sandbox process except Warden itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// User CPU in clock ticks, summed over live processes (children waited for included).
    pub cpu_user_ticks: u64,
    /// System CPU in clock ticks, likewise.
    pub cpu_system_ticks: u64,
    /// Last pid allocated in the sandbox's pid namespace.
    pub last_pid: Option<u32>,
    /// Counters from /proc/net/snmp.
    pub snmp: super::parse::Snmp,
    /// Counters from /proc/net/dev.
    pub net: super::parse::NetDev,
    /// Live processes.
    pub processes: u32,
    /// Live threads.
    pub threads: u32,
    /// Open file descriptors (of the processes whose fd directory is readable).
    pub open_fds: u32,
    /// Resident memory in KiB.
    pub rss_kb: u64,
    /// Sum of each process's peak resident memory in KiB.
    pub rss_peak_kb: u64,
    /// Usage of the scratch directory.
    pub tmp: TmpUsage,
    /// Warden's own CPU time in microseconds (getrusage).
    pub own_cpu_us: u64,
    /// Warden's own resident memory in KiB.
    pub own_rss_kb: u64,
    /// Live process ids (sorted), Warden excluded.
    pub pids: Vec<u32>,
    /// Warden's own connections to outside the sandbox (zero unless it makes any).
    pub own_net: OwnNet,
}

impl CounterSnapshot {
    /// At SHUTDOWN Lambda has already stopped the runtime, so the gauges of live processes
    /// would describe an environment without it: each keeps the larger of this reading and
    /// the invocation's start. Pids stay as read, so what still runs is still named.
    pub fn without_stopped_runtime(&self, start: &CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            processes: self.processes.max(start.processes),
            threads: self.threads.max(start.threads),
            open_fds: self.open_fds.max(start.open_fds),
            rss_kb: self.rss_kb.max(start.rss_kb),
            rss_peak_kb: self.rss_peak_kb.max(start.rss_peak_kb),
            ..self.clone()
        }
    }
}

impl CounterSnapshot {
    /// Without the processes `pids` (started by the next invocation before this snapshot
    /// was read): gone from the live pids, and one process and one thread less each (their
    /// own thread count was not read; a process is one thread when it starts).
    pub fn without_processes(self, pids: &[u32]) -> CounterSnapshot {
        let before = self.pids.len();
        let mut live = self.pids;
        live.retain(|p| !pids.contains(p));
        let gone = (before - live.len()) as u32;
        CounterSnapshot {
            processes: self.processes.saturating_sub(gone),
            threads: self.threads.saturating_sub(gone),
            pids: live,
            ..self
        }
    }

    /// The change from `prev` to `self`; `ticks_per_sec` converts CPU ticks (USER_HZ).
    pub fn delta_since(&self, prev: &CounterSnapshot, ticks_per_sec: u64) -> CounterDelta {
        let ms = |t: u64| t.saturating_mul(1000) / ticks_per_sec.max(1);
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let signed = |a: u64, b: u64| a as i64 - b as i64;
        let (s, p) = (&self.snmp, &prev.snmp);
        // Warden's own requests go out on the function's network: left out of its counters.
        let (own, own_prev) = (&self.own_net, &prev.own_net);
        let own_opens = d(own.connects, own_prev.connects);
        let own_tx = d(own.wire_tx_bytes(), own_prev.wire_tx_bytes());
        let own_rx = d(own.wire_rx_bytes(), own_prev.wire_rx_bytes());
        let active = d(s.tcp_active_opens, p.tcp_active_opens).saturating_sub(own_opens);
        let passive = d(s.tcp_passive_opens, p.tcp_passive_opens);
        CounterDelta {
            cpu_user_ms: ms(d(self.cpu_user_ticks, prev.cpu_user_ticks)),
            cpu_system_ms: ms(d(self.cpu_system_ticks, prev.cpu_system_ticks)),
            tasks_created: pids_allocated(prev.last_pid, self.last_pid),
            tcp_active_opens: active,
            tcp_passive_opens: passive,
            tcp_outbound_opens: active.saturating_sub(passive),
            tcp_out_segs: d(s.tcp_out_segs, p.tcp_out_segs)
                .saturating_sub(d(own.segs_out, own_prev.segs_out)),
            tcp_retrans_segs: d(s.tcp_retrans_segs, p.tcp_retrans_segs),
            udp_in_datagrams: d(s.udp_in_datagrams, p.udp_in_datagrams),
            udp_out_datagrams: d(s.udp_out_datagrams, p.udp_out_datagrams),
            net_rx_bytes: d(self.net.rx_bytes, prev.net.rx_bytes).saturating_sub(own_rx),
            net_tx_bytes: d(self.net.tx_bytes, prev.net.tx_bytes).saturating_sub(own_tx),
            lo_bytes: d(self.net.lo_tx_bytes, prev.net.lo_tx_bytes),
            tmp_bytes_delta: signed(self.tmp.bytes, prev.tmp.bytes),
            tmp_files_delta: signed(self.tmp.files, prev.tmp.files),
            open_fds_delta: signed(self.open_fds.into(), prev.open_fds.into()),
            processes_delta: signed(self.processes.into(), prev.processes.into()),
            warden_cpu_us: d(self.own_cpu_us, prev.own_cpu_us),
            warden_net_bytes: own_tx + own_rx,
            warden_tcp_opens: own_opens,
        }
    }
}

/// Pids handed out between two readings of the allocator. Pids wrap at pid_max (default
/// 4,194,304 on 64-bit, 32,768 on old systems); a wrap is counted as reaching the top.
fn pids_allocated(prev: Option<u32>, cur: Option<u32>) -> u64 {
    match (prev, cur) {
        (Some(p), Some(c)) if c >= p => u64::from(c - p),
        (Some(_), Some(c)) => u64::from(c),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_converts_units_and_derives_outbound() {
        let mut a = CounterSnapshot {
            cpu_user_ticks: 100,
            last_pid: Some(40),
            ..Default::default()
        };
        a.snmp.tcp_active_opens = 10;
        a.snmp.tcp_passive_opens = 4;
        a.tmp.bytes = 4096;
        let mut b = a.clone();
        b.cpu_user_ticks = 125;
        b.last_pid = Some(43);
        b.snmp.tcp_active_opens = 15;
        b.snmp.tcp_passive_opens = 5;
        b.tmp.bytes = 0;
        let d = b.delta_since(&a, 100);
        assert_eq!(d.cpu_user_ms, 250);
        assert_eq!(d.tasks_created, 3);
        assert_eq!(d.tcp_active_opens, 5);
        assert_eq!(d.tcp_outbound_opens, 4, "one open was a loopback pair");
        assert_eq!(d.tmp_bytes_delta, -4096);
    }

    #[test]
    fn counters_that_go_backwards_give_zero_not_garbage() {
        let a = CounterSnapshot {
            cpu_system_ticks: 50,
            last_pid: Some(4_000_000),
            ..Default::default()
        };
        let b = CounterSnapshot {
            cpu_system_ticks: 40,
            last_pid: Some(310),
            ..Default::default()
        };
        let d = b.delta_since(&a, 100);
        assert_eq!(d.cpu_system_ms, 0);
        assert_eq!(d.tasks_created, 310);
    }
}
