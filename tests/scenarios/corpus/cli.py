"""scripts/scenarios: runs the scenario corpus in the sandbox and writes labelled records."""

import argparse
import collections
import json
import os
import shutil
import sys
import time
from pathlib import Path

from . import plan, selftest
from .catalog import FUNCTIONS, HOLDOUT, expand
from .hosts import Services
from .runner import CorpusError, Tools, labelled, run_in_sandbox


def parse(argv):
    ap = argparse.ArgumentParser(prog="scripts/scenarios", description=__doc__)
    ap.add_argument("--out", help="labelled records, JSON lines (required unless --self-test or --dry-run)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", choices=sorted(plan.SCALES), default="small",
                    help="small (tests, CI), medium, or full (training)")
    ap.add_argument("--only", action="append", default=[],
                    help="a function, an attack class, 'benign', 'attack' or 'new-habit' (repeatable)")
    ap.add_argument("--split", choices=("train", "test"), default="train",
                    help="train leaves the held-out functions out; test runs everything")
    ap.add_argument("--holdout", default=",".join(HOLDOUT),
                    help="held-out functions (`new-habit`: bash-runtime, node-api, pdf-convert)")
    ap.add_argument("--self-test", action="store_true",
                    help="run a small cut and check that every attack really happened")
    ap.add_argument("--check", action="store_true",
                    help="check every run's attacks (as --self-test does) and fail on a problem")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    ap.add_argument("--no-extension", action="store_true", help="run without the Warden extension")
    ap.add_argument("--sandbox", help="warden-sandbox binary (default: newest under target/)")
    ap.add_argument("--extension", help="warden-extension binary (default: newest under target/)")
    ap.add_argument("--python", help="Python with awslambdaric (default: .venv/bin/python)")
    ap.add_argument("--port-base", type=int, help="fixed host ports (default: any free ones)")
    ap.add_argument("--env", action="append", default=[], help="K=V for the function and Warden")
    ap.add_argument("--guard", action="store_true",
                    help="load the in-process guard through the layer's exec wrapper, as the SAM "
                         "template does (managed runtimes only: Lambda runs no wrapper for a custom "
                         "runtime's bootstrap)")
    ap.add_argument("--host-log", help="write what the host services saw here (JSON lines)")
    ap.add_argument("--keep-work", action="store_true", help="keep target/scenarios/work-*")
    args = ap.parse_args(argv)
    if args.self_test:
        args.split, args.check = "test", True
        args.only = args.only or list(selftest.SELF_TEST_ONLY)
    if not (args.out or args.self_test or args.dry_run):
        ap.error("--out is required")
    return args


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    root = Path(__file__).resolve().parents[3]
    services = Services(args.seed, args.port_base)
    holdout = expand(h for h in args.holdout.split(",") if h)
    runs = plan.build(args.seed, args.scale, services.ports, args.split, holdout, tuple(args.only))
    if not runs:
        print("scenarios: nothing selected (held-out functions run only with --split test)",
              file=sys.stderr)
        return 2
    if args.dry_run:
        return dry_run(runs)
    work = root / "target" / "scenarios" / f"work-{os.getpid()}"
    try:
        tools = Tools.locate(root, work, args.sandbox, args.extension, args.no_extension, args.python,
                             args.guard)
        services.start()
        return execute(args, runs, tools, services)
    except CorpusError as err:
        print(f"scenarios: {err}", file=sys.stderr)
        return 2
    finally:
        services.stop()
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)


def dry_run(runs):
    for run in runs:
        labels = collections.Counter(i.label for i in run.invocations)
        print(f"{run.name:45} pause {run.pause_ms:4} ms  {dict(labels)}")
    print(f"{sum(len(r.invocations) for r in runs)} invocations in {len(runs)} runs")
    return 0


def run_with_retry(run, tools, services, env):
    """Runs `run` in the sandbox; a sandbox failure gets one more try, then `None`."""
    for attempt in (1, 2):
        try:
            return run_in_sandbox(run, tools, services.ports, env)
        except CorpusError as err:
            print(f"scenarios: {run.name}: attempt {attempt} failed: {err}", file=sys.stderr)
    return None


def execute(args, runs, tools, services):
    env = [tuple(e.split("=", 1)) for e in args.env]
    started = time.monotonic()
    counts, problems, missing, failed = collections.Counter(), [], 0, []
    out = open(args.out, "w") if args.out else None
    try:
        for run in runs:
            mark = services.log.mark()
            result = run_with_retry(run, tools, services, env)
            services.settle()
            if result is None:
                failed.append(run.name)
                continue
            for index, outcome in enumerate(result.outcomes):
                line = labelled(outcome, run, args.seed, args.split, index)
                line["guarded"] = bool(tools.wrapper_env(line["runtime"])) and not FUNCTIONS[run.function].bootstrap
                counts[line["label"]] += 1
                missing += outcome.record is None
                if out:
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
            statuses = collections.Counter(o.report["status"] for o in result.outcomes)
            print(f"scenarios: {run.name:45} {dict(statuses)}", file=sys.stderr)
            if args.check:
                found = selftest.check_run(result, services.log.since(mark), tools.extension is not None)
                problems += found
                for p in found:
                    print(f"scenarios: FAIL {p}", file=sys.stderr)
    finally:
        if out:
            out.close()
        if args.host_log:
            with open(args.host_log, "w") as f:
                for item in services.log.since(0):
                    f.write(json.dumps(item) + "\n")
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    print(f"scenarios: {total} invocations in {len(runs)} runs, {elapsed:.1f} s; "
          f"without a feature record: {missing}", file=sys.stderr)
    print("scenarios: per label " + json.dumps(dict(sorted(counts.items()))), file=sys.stderr)
    if failed:
        # A sandbox failure is not the corpus's behaviour: the run is left out, and said so.
        print(f"scenarios: {len(failed)} runs failed twice and are left out: {', '.join(failed)}",
              file=sys.stderr)
    if args.check:
        print(f"scenarios: checks {'FAILED' if problems else 'passed'} ({len(problems)} problems)",
              file=sys.stderr)
        return 1 if problems or failed else 0
    return 0
