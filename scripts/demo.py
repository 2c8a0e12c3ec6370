"""Runs the demo described in scripts/demo and prints what Warden saw."""
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


def listener():
    """A stand-in for an attacker's server on the host: accepts and counts bytes."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(16)
    received = {"bytes": 0, "connections": 0}

    def serve():
        while True:
            conn, _ = srv.accept()
            received["connections"] += 1
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                received["bytes"] += len(data)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], received


def layer():
    path = os.path.join(WORK, "layer", "extensions")
    os.makedirs(path, exist_ok=True)
    shutil.copy2(os.path.join(RELEASE, "warden-extension"), os.path.join(path, "warden"))
    return os.path.dirname(path)


def workload(port):
    benign = [{"log_lines": 3, "burn_ms": 5 + 3 * i} for i in range(6)]
    attacks = [
        ("command injection: a shell runs", {"spawn": ["sh", "-c", "id; uname -a"]}),
        ("exfiltration: 3 MB sent out", {"send": {"host": "host.sandbox", "port": port, "bytes": 3_000_000}}),
        ("dropper: payload written to /tmp and run", {"exec_tmp": {"path": "/tmp/.x", "script": "#!/bin/sh\necho pwned"}}),
        ("persistence: a process left running", {"spawn_detached": ["sleep", "300"]}),
        ("probing: errors and a traceback", {"error_lines": 20, "fail": "bad input"}),
    ]
    events = [(f"benign #{i + 1}", e) for i, e in enumerate(benign)] + attacks + [("benign again", {"log_lines": 3})]
    return events


def run(function_args, name, events):
    os.makedirs(WORK, exist_ok=True)
    events_file = os.path.join(WORK, f"{name}.events.jsonl")
    report_file = os.path.join(WORK, f"{name}.report.jsonl")
    with open(events_file, "w") as f:
        for _, event in events:
            f.write(json.dumps(event) + "\n")
    cmd = [os.path.join(RELEASE, "warden-sandbox"), "run", "--layer", layer(), *function_args,
           "--events", events_file, "--report", report_file, "--host-link", "--quiet",
           "--env", "WARDEN_RECORDS=1", "--timeout-s", "10", "--function-name", name]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                         "WARDEN_SANDBOX_PYTHON": os.path.join(ROOT, ".venv", "bin", "python")})
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"sandbox failed with {out.returncode}")
    records = {}
    for line in out.stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("kind") == "invoke":
            records[value.get("request_id")] = value
    report = [json.loads(l) for l in open(report_file) if l.strip()]
    return report, records


def show(title, events, report, records):
    print(f"\n== {title}")
    print(f"{'invocation':<44} {'status':<8} {'cpu ms':>6} {'tasks':>5} {'tcp out':>7} {'tx bytes':>9} "
          f"{'/tmp new':>8} {'left':>4}  processes seen")
    for (label, _), inv in zip(events, [r for r in report if r.get("type") == "invocation"]):
        rec = records.get(inv["request_id"], {})
        procs = sorted({os.path.basename(e.get("exe") or "?") for e in rec.get("evidence", [])
                        if e.get("kind") == "process" and e.get("exe")})
        cpu = (rec.get("cpu_user_ms") or 0) + (rec.get("cpu_system_ms") or 0)
        print(f"{label:<44} {inv['status']:<8} {cpu:>6} {rec.get('tasks_created', '-'):>5} "
              f"{rec.get('tcp_active_opens', '-'):>7} {rec.get('net_tx_bytes', '-'):>9} "
              f"{rec.get('tmp_files_created', '-'):>8} {rec.get('processes_left_running', '-'):>4}  "
              f"{', '.join(procs) or '-'}")


def main():
    port, received = listener()
    events = workload(port)
    python = ["--function", os.path.join(ROOT, "tests", "functions", "python-probe"), "--runtime", "python",
              "--handler", "handler.handler"]
    report, records = run(python, "orders-api", events)
    show("Python function (awslambdaric) with the Warden layer", events, report, records)
    rust_dir = os.path.join(WORK, "rust-function")
    os.makedirs(rust_dir, exist_ok=True)
    shutil.copy2(os.path.join(RELEASE, "rust-probe"), os.path.join(rust_dir, "bootstrap"))
    report, records = run(["--function", rust_dir, "--runtime", "provided"], "thumbnailer", events)
    show("Rust function (lambda_runtime) with the Warden layer", events, report, records)
    summary = [r for r in report if r.get("type") == "summary"]
    print(f"\nthe host-side listener received {received['bytes']} bytes on {received['connections']} connections")
    if summary:
        s = summary[0]
        print(f"sandbox: {s['invocations']} invocations, median post-runtime {s['median_post_runtime_ms']} ms, "
              f"isolated={s['isolated']}")
    print("records: one JSON line per invocation on the sandbox's stdout (WARDEN_RECORDS=1); "
          "fields are in docs/features.md")


if __name__ == "__main__":
    main()
