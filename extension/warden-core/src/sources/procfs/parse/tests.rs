use super::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/proc/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn stat_valid() {
    let s = parse_stat(&fixture("valid_stat")).unwrap();
    assert_eq!(
        s,
        PidStat {
            state: b'S',
            ppid: 4144,
            utime: 250,
            stime: 31,
            cutime: 7,
            cstime: 2,
            threads: 3,
            start_ticks: 62008,
        }
    );
}

#[test]
fn stat_with_spaces_and_parens_in_name() {
    let s = parse_stat(&fixture("valid_stat_odd_name")).unwrap();
    assert_eq!(
        (s.ppid, s.utime, s.stime, s.threads, s.start_ticks),
        (1, 5, 6, 1, 900)
    );
}

#[test]
fn stat_invalid() {
    assert_eq!(
        parse_stat(&fixture("invalid_stat_truncated")),
        Err(ParseError::Missing("utime"))
    );
    assert_eq!(
        parse_stat(&fixture("invalid_stat_no_comm")),
        Err(ParseError::Missing("comm"))
    );
    assert!(parse_stat("").is_err());
}

#[test]
fn status_valid() {
    let s = parse_status(&fixture("valid_status")).unwrap();
    assert_eq!(
        s,
        PidStatus {
            tgid: 4148,
            rss_kb: 40960,
            hwm_kb: 51200
        }
    );
    let t = parse_status(&fixture("valid_status_thread")).unwrap();
    assert_eq!((t.tgid, t.rss_kb, t.hwm_kb), (4148, 18000, 20480));
    let k = parse_status(&fixture("valid_status_kernel_thread")).unwrap();
    assert_eq!((k.tgid, k.rss_kb), (2, 0));
}

#[test]
fn status_invalid() {
    assert_eq!(
        parse_status(&fixture("invalid_status_no_tgid")),
        Err(ParseError::Missing("Tgid"))
    );
    assert_eq!(
        parse_status(&fixture("invalid_status_bad_rss")),
        Err(ParseError::NotANumber("VmRSS"))
    );
}

#[test]
fn loadavg() {
    assert_eq!(parse_last_pid(&fixture("valid_loadavg")), Ok(4150));
    assert_eq!(
        parse_last_pid(&fixture("invalid_loadavg")),
        Err(ParseError::Missing("last pid"))
    );
}

#[test]
fn snmp_valid() {
    let s = parse_snmp(&fixture("valid_snmp")).unwrap();
    assert_eq!(
        s,
        Snmp {
            tcp_active_opens: 30,
            tcp_passive_opens: 2,
            tcp_out_segs: 1894,
            tcp_retrans_segs: 0,
            tcp_curr_estab: 2,
            udp_in_datagrams: 57,
            udp_out_datagrams: 58,
        }
    );
}

#[test]
fn snmp_invalid() {
    assert_eq!(
        parse_snmp(&fixture("invalid_snmp_no_udp")),
        Err(ParseError::Missing("Udp"))
    );
    assert_eq!(
        parse_snmp(&fixture("invalid_snmp_no_values")),
        Err(ParseError::Missing("snmp values line"))
    );
}

#[test]
fn net_dev_valid_splits_loopback() {
    let d = parse_net_dev(&fixture("valid_net_dev")).unwrap();
    assert_eq!(
        d,
        NetDev {
            rx_bytes: 53_863_328,
            tx_bytes: 204_278,
            lo_rx_bytes: 3193,
            lo_tx_bytes: 3193,
        }
    );
}

#[test]
fn net_dev_invalid() {
    assert_eq!(
        parse_net_dev(&fixture("invalid_net_dev")),
        Err(ParseError::NotANumber("rx bytes"))
    );
    assert_eq!(
        parse_net_dev(&fixture("invalid_net_dev_empty")),
        Err(ParseError::Missing("interface"))
    );
}

fn sockets(name: &str) -> Vec<Socket> {
    fixture(name)
        .lines()
        .filter_map(parse_socket_line)
        .collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

// The fixtures are written as a little-endian kernel prints them (x86_64 and aarch64).
#[cfg(target_endian = "little")]
#[test]
fn tcp4_table() {
    let t = sockets("valid_net_tcp");
    assert_eq!(t.len(), 3, "header skipped, three sockets");
    assert_eq!(t[0].local, addr("0.0.0.0:2024"));
    assert_eq!(t[0].state, TCP_LISTEN);
    assert_eq!(t[0].inode, 1223);
    assert_eq!(t[1].local, addr("192.0.2.2:60734"));
    assert_eq!(t[1].remote, addr("203.0.113.80:443"));
    assert_eq!(t[1].state, 1);
    assert_eq!(t[2].remote, addr("127.0.0.1:9001"));
}

#[cfg(target_endian = "little")]
#[test]
fn tcp6_table_maps_v4_and_keeps_v6() {
    let t = sockets("valid_net_tcp6");
    assert_eq!(t.len(), 3);
    assert_eq!(t[0].local, addr("[::]:8080"));
    assert_eq!(t[1].remote, addr("10.0.0.5:443"), "v4-mapped shown as v4");
    assert_eq!(t[2].local, addr("[2001:db8::2]:54322"));
    assert_eq!(t[2].remote, addr("[2001:db8::1]:80"));
    assert_eq!(t[2].state, 2);
}

#[cfg(target_endian = "little")]
#[test]
fn udp_table() {
    let t = sockets("valid_net_udp");
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].remote, addr("8.8.8.8:53"));
    assert_eq!(t[1].state, 7);
}

#[test]
fn socket_line_rejects_garbage() {
    assert_eq!(
        parse_socket_line("  sl  local_address rem_address st"),
        None
    );
    assert_eq!(
        parse_socket_line("0: zz:1 00000000:0000 0A 0 0 0 0 0 1"),
        None
    );
    assert_eq!(parse_socket_line(""), None);
}

#[test]
fn statm_resident_pages() {
    assert_eq!(parse_statm_rss("2717 1024 600 430 0 392 0\n"), Ok(1024));
    assert_eq!(
        parse_statm_rss("2717"),
        Err(ParseError::Missing("resident"))
    );
    assert_eq!(
        parse_statm_rss("1 x 2"),
        Err(ParseError::NotANumber("resident"))
    );
}

#[test]
fn net_dev_counters_saturate_instead_of_overflowing() {
    // Found by fuzzing (fuzz/ procfs): two interfaces near u64::MAX overflowed the sums.
    let max = u64::MAX;
    let text = format!(
        "Inter-| header\n face | header\n eth0: {max} 0 0 0 0 0 0 0 {max} 0\n eth1: {max} 0 0 0 0 0 0 0 {max} 0\n"
    );
    let d = parse_net_dev(&text).unwrap();
    assert_eq!((d.rx_bytes, d.tx_bytes), (max, max));
}
