"""Runs one planned run in `warden-sandbox` and joins each invocation's report line with the
feature record the Warden extension printed for it (matched by request id)."""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .catalog import FUNCTIONS

RECORD_PREFIX = '{"warden_schema"'


class CorpusError(Exception):
    """A run could not be carried out (missing binary, sandbox failure)."""


def newest(root, name):
    """target/release/NAME or target/debug/NAME, whichever was built last."""
    found = [root / "target" / profile / name for profile in ("release", "debug")]
    found = [p for p in found if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


@dataclass
class Tools:
    root: Path
    sandbox: Path
    extension: Path  # None: run without the Warden extension (no feature records)
    python: Path
    rust_probe: Path
    work: Path
    guard: tuple = None  # (library, exec wrapper) placed in the layer, or None

    @classmethod
    def locate(cls, root, work, sandbox=None, extension=None, no_extension=False, python=None,
               guard=False):
        sandbox = Path(sandbox) if sandbox else newest(root, "warden-sandbox")
        if not sandbox or not sandbox.is_file():
            raise CorpusError("warden-sandbox not found: build it (cargo build -p warden-sandbox)")
        ext = None
        if not no_extension:
            ext = Path(extension) if extension else newest(root, "warden-extension")
            if not ext or not ext.is_file():
                raise CorpusError("warden-extension not found: build it, or pass --no-extension")
        venv = root / ".venv" / "bin" / "python"
        py = Path(python or os.environ.get("WARDEN_SANDBOX_PYTHON") or (venv if venv.exists() else "python3"))
        parts = None
        if guard:
            parts = (newest(root, "libwarden_guard.so"), newest(root, "warden-wrapper"))
            if not all(parts):
                raise CorpusError("--guard: build the guard and its wrapper "
                                  "(cargo build --release -p warden-guard -p warden-wrapper)")
        return cls(root, sandbox, ext, py, newest(root, "rust-probe"), work, parts)

    def layer(self):
        layer = self.work / "layer"
        extensions = layer / "extensions"
        if not extensions.is_dir():
            extensions.mkdir(parents=True)
            if self.extension:
                _place(self.extension, extensions / "warden")
            if self.guard:
                (layer / "warden" / "lib").mkdir(parents=True)
                _place(self.guard[0], layer / "warden" / "lib" / "libwarden_guard.so")
                _place(self.guard[1], layer / "warden" / "wrapper")
                _place(self.root / "extension" / "warden-guard" / "watch" / "node-watch.js",
                       layer / "warden" / "lib" / "node-watch.js")
        return layer

    def wrapper_env(self, runtime):
        """How the guard is loaded: the exec wrapper's variable for a managed runtime (Python);
        for a custom runtime, where its bootstrap finds the library (as the function's own
        bootstrap loads it, docs/configuration.md). Paths are the layer's on the host, which the
        sandbox sees isolated or not."""
        if not self.guard:
            return []
        if runtime == "python":
            return [("AWS_LAMBDA_EXEC_WRAPPER", str(self.layer() / "warden" / "wrapper"))]
        return [("GUARD_LIBRARY", str(self.layer() / "warden" / "lib" / "libwarden_guard.so"))]

    def function_dir(self, name):
        """The code directory: the function's own under functions/ (a Python handler, or a
        custom runtime's `bootstrap`), or a scratch one with a workspace binary as bootstrap."""
        spec = FUNCTIONS[name]
        if not spec.bootstrap:
            return self.root / "tests" / "scenarios" / "functions" / name
        binary = self.rust_probe if spec.bootstrap == "rust-probe" else newest(self.root, spec.bootstrap)
        if not binary:
            raise CorpusError(f"{spec.bootstrap} not found: build the workspace binaries")
        target = self.work / "functions" / name
        if not (target / "bootstrap").exists():
            target.mkdir(parents=True, exist_ok=True)
            _place(binary, target / "bootstrap")
        return target


def _place(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@dataclass
class Outcome:
    """One invocation as it happened: the plan, the sandbox's report line, Warden's record."""

    planned: object
    report: dict
    record: dict


@dataclass
class RunResult:
    run: object
    outcomes: list
    stdout: str
    stderr: str
    init_records: list


def run_in_sandbox(run, tools, ports, env=()):
    spec = FUNCTIONS[run.function]
    folder = tools.work / "runs" / run.name.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    events, report = folder / "events.jsonl", folder / "report.jsonl"
    with open(events, "w") as f:
        for inv in run.invocations:
            f.write(json.dumps(inv.event, separators=(",", ":")) + "\n")
    fn_env = {k: v.format(**ports) for k, v in spec.env.items()}
    cmd = [str(tools.sandbox), "run", "--layer", str(tools.layer()),
           "--function", str(tools.function_dir(run.function)), "--function-name", run.function,
           "--runtime", spec.runtime, "--memory-mb", str(spec.memory_mb),
           "--timeout-s", str(spec.timeout_s), "--events", str(events), "--report", str(report),
           "--pause-ms", str(run.pause_ms), "--host-link", "--quiet", "--python", str(tools.python)]
    if spec.runtime == "python":
        cmd += ["--handler", "handler.handler"]
    for port in sorted(ports.values()):
        cmd += ["--host-forward", str(port)]
    for key, value in [*fn_env.items(), ("WARDEN_RECORDS", "1"), *tools.wrapper_env(spec.runtime), *env]:
        cmd += ["--env", f"{key}={value}"]
    limit = 60 + len(run.invocations) * (spec.timeout_s + 5)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=limit,
                              env={**os.environ, "WARDEN_SANDBOX_PYTHON": str(tools.python)})
    except subprocess.TimeoutExpired as err:
        raise CorpusError(f"{run.name}: the sandbox ran past {limit} s") from err
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    # Kept beside the run's events (removed with the work directory unless --keep-work).
    (folder / "stdout.txt").write_text(stdout)
    (folder / "stderr.txt").write_text(stderr)
    if done.returncode != 0:
        raise CorpusError(f"{run.name}: warden-sandbox exited {done.returncode}: {stderr[-2000:]}")
    lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    reports = [line for line in lines if line.get("type") == "invocation"]
    if len(reports) != len(run.invocations):
        raise CorpusError(f"{run.name}: {len(reports)} report lines for {len(run.invocations)} events")
    records, inits = _records(stdout)
    outcomes = [Outcome(inv, rep, records.get(rep.get("request_id")))
                for inv, rep in zip(run.invocations, reports)]
    return RunResult(run, outcomes, stdout, stderr, inits)


def _records(stdout):
    """Warden's feature records from the sandbox's stdout, by request id, and init records."""
    by_id, inits = {}, []
    for line in stdout.splitlines():
        if not line.startswith(RECORD_PREFIX):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("kind") == "invoke" and record.get("request_id"):
            by_id[record["request_id"]] = record
        elif record.get("kind") == "init":
            inits.append(record)
    return by_id, inits


SANDBOX_FIELDS = ("status", "cold", "latency_ms", "init_ms", "duration_ms", "billed_ms",
                  "max_memory_mb", "post_runtime_ms", "produced_bytes")


def labelled(outcome, run, seed, split, index):
    """The corpus line for one invocation."""
    inv, report = outcome.planned, outcome.report
    sandbox = {k: report.get(k) for k in SANDBOX_FIELDS}
    sandbox["error_type"] = (report.get("error") or {}).get("errorType")
    return {"label": inv.label, "attack": inv.label != "benign", "variant": inv.variant,
            "stage": inv.stage, "function": run.function, "runtime": FUNCTIONS[run.function].runtime,
            "language": FUNCTIONS[run.function].language, "new_habit": FUNCTIONS[run.function].new_habit,
            "scenario": run.scenario, "run": run.name, "index": index, "seed": seed, "split": split,
            "request_id": report.get("request_id"), "sandbox": sandbox, "record": outcome.record}
