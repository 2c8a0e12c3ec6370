"""Checks that the attacks really happened, from what the host services saw and what the
sandbox reported, so that the corpus cannot silently stop attacking."""

import json
import re


def _text(response):
    return response if isinstance(response, str) else json.dumps(response)


def _attacks(result):
    return [o for o in result.outcomes if o.planned.stage == "attack"]


def check_run(result, seen, with_records):
    """Problems found in one run; `seen` is what the host services logged during it."""
    problems = []
    name = result.run.name
    attacks = _attacks(result)
    for n, outcome in enumerate(result.outcomes):
        report, expect = outcome.report, outcome.planned.expect
        where = f"{name} #{n} ({outcome.planned.label}/{outcome.planned.variant})"
        if with_records and outcome.record is None:
            problems.append(f"{where}: no feature record from the extension")
        if outcome.planned.label == "benign" and report["status"] in ("timeout", "crash"):
            problems.append(f"{where}: benign invocation ended in {report['status']}")
        if "output_contains" in expect:
            text = _text(report.get("response"))
            if expect["output_contains"] not in text:
                problems.append(f"{where}: response lacks {expect['output_contains']!r}: {text[:300]}")
        if "status" in expect and report["status"] != expect["status"]:
            problems.append(f"{where}: status {report['status']}, expected {expect['status']}")
        produced = report.get("produced_bytes") or 0
        if "min_response_bytes" in expect and produced < expect["min_response_bytes"]:
            problems.append(f"{where}: response of {report.get('produced_bytes')} bytes")
    problems += _host_checks(name, attacks, seen, result)
    return problems


def _host_checks(name, attacks, seen, result):
    problems = []
    want = {key: [a for a in attacks if key in a.planned.expect]
            for key in ("c2_contains", "loot_contains", "exfil_bytes", "pool_methods", "beacon")}
    if want["c2_contains"]:
        shells = [s for s in seen if s["service"] == "c2" and "uid=" in s["transcript"]]
        if len(shells) < len(want["c2_contains"]):
            problems.append(f"{name}: {len(shells)} reverse shells answered `id`, "
                            f"expected {len(want['c2_contains'])}")
    if want["loot_contains"]:
        loot = [s for s in seen if s["service"] == "loot" and "AWS_SECRET_ACCESS_KEY" in s.get("body", "")]
        if len(loot) < len(want["loot_contains"]):
            problems.append(f"{name}: {len(loot)} credential uploads, expected {len(want['loot_contains'])}")
    if want["exfil_bytes"]:
        got = sum(s["bytes"] for s in seen if s["service"] == "exfil")
        expected = sum(a.planned.expect["exfil_bytes"] for a in want["exfil_bytes"])
        if got < expected:
            problems.append(f"{name}: exfiltration listener got {got} bytes, expected {expected}")
    if want["pool_methods"]:
        sessions = [s["methods"] for s in seen if s["service"] == "pool"]
        full = [m for m in sessions if {"mining.subscribe", "mining.authorize", "mining.submit"} <= set(m)]
        if len(full) < len(want["pool_methods"]):
            problems.append(f"{name}: {len(full)} full stratum sessions, "
                            f"expected {len(want['pool_methods'])}")
    if want["beacon"]:
        beats = [int(m.group(1)) for s in seen if s["service"] == "beacon"
                 for m in [re.match(r"beat (\d+)", s["line"])] if m]
        # Beats are 0.3 s apart: a beat numbered 2 or more was sent after the planting
        # invocation (a few ms) had returned, by a process that outlived it.
        if not beats or max(beats) < 2:
            problems.append(f"{name}: persistence beacons {beats}, expected one numbered 2 or more")
    if result.run.scenario == "attack/probing" and "Traceback" not in result.stdout:
        problems.append(f"{name}: no traceback in the function's output")
    if result.run.function == "webhook-forwarder":
        posts = [s for s in seen if s["service"] == "hooks" and s["method"] == "POST"]
        if len(posts) < len(result.outcomes):
            problems.append(f"{name}: {len(posts)} webhook deliveries for {len(result.outcomes)} events")
    if result.run.function == "metrics-shipper":
        if not any(s["bytes"] > 0 for s in seen if s["service"] == "collector"):
            problems.append(f"{name}: the collector received nothing")
    return problems


# A quick cut of the small corpus: every attack campaign and a few benign functions,
# including one that talks to the host, one that spawns helpers and the Rust ones.
SELF_TEST_ONLY = ("attack", "webhook-forwarder", "report-builder", "checksum-service", "metrics-shipper")
