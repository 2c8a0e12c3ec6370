"""Checks that the attacks really happened, from what the host services saw and what the
sandbox reported, so that the corpus cannot silently stop attacking."""

import json
import re

from .catalog import FUNCTIONS

# What a function's unhandled errors leave in its output (a probing burst must show it).
ERROR_TRACE = {"python": "Traceback", "node": "Invoke Error"}
# The new-habit functions' benign answers: a successful invocation's response has the marker
# (so a broken custom runtime or pipeline cannot pass for a quiet function), and an error is
# one of the function's own legitimate errors.
BENIGN_MARKERS = {"bash-runtime": ('"total"',), "node-api": ('"statusCode"',),
                  "pdf-convert": ('\\"words\\"', "not a PDF")}
BENIGN_ERRORS = {"bash-runtime": {"HandlerError"}, "node-api": {"TypeError"}, "pdf-convert": set()}


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
        if outcome.planned.stage is None:
            problems += _benign_answer(where, result.run.function, report)
    problems += _host_checks(name, attacks, seen, result)
    return problems


def _benign_answer(where, function, report):
    if function not in BENIGN_MARKERS:
        return []
    if report["status"] == "success":
        text = _text(report.get("response"))
        if not any(marker in text for marker in BENIGN_MARKERS[function]):
            return [f"{where}: unexpected answer {text[:300]}"]
    elif report["status"] == "error":
        kind = (report.get("error") or {}).get("errorType")
        if kind not in BENIGN_ERRORS[function]:
            return [f"{where}: unexpected error {kind}: {json.dumps(report.get('error'))[:300]}"]
    return []


def _host_checks(name, attacks, seen, result):
    problems = []
    want = {key: [a for a in attacks if key in a.planned.expect]
            for key in ("c2_contains", "loot_contains", "exfil_bytes", "pool_methods", "beacon",
                        "docs_contains")}
    if want["c2_contains"]:
        shells = [s for s in seen if s["service"] == "c2" and "uid=" in s["transcript"]]
        if len(shells) < len(want["c2_contains"]):
            problems.append(f"{name}: {len(shells)} reverse shells answered `id`, "
                            f"expected {len(want['c2_contains'])}")
    if want["loot_contains"]:
        # In a body, or in the query string of a GET.
        loot = [s for s in seen if s["service"] == "loot"
                and "AWS_SECRET_ACCESS_KEY" in s.get("body", "") + s.get("path", "")]
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
    if want["docs_contains"]:
        smuggled = [s for s in seen if s["service"] == "docs"
                    and any(a.planned.expect["docs_contains"] in s["path"] for a in want["docs_contains"])]
        if len(smuggled) < len(want["docs_contains"]):
            problems.append(f"{name}: {len(smuggled)} downloads carried the command's output, "
                            f"expected {len(want['docs_contains'])}")
    trace = ERROR_TRACE.get(FUNCTIONS[result.run.function].language)
    if result.run.scenario == "attack/probing" and trace not in result.stdout + result.stderr:
        problems.append(f"{name}: no {trace!r} in the function's output")
    if result.run.function == "webhook-forwarder":
        posts = [s for s in seen if s["service"] == "hooks" and s["method"] == "POST"]
        if len(posts) < len(result.outcomes):
            problems.append(f"{name}: {len(posts)} webhook deliveries for {len(result.outcomes)} events")
    if result.run.function == "node-api":
        # Every accepted order that asked for it notified the webhook (a 503 is retried).
        notified = sum(1 for o in result.outcomes
                       if o.report["status"] == "success" and '"notify": true' in _order_body(o)
                       and '"statusCode": 201' in _text(o.report.get("response")))
        posts = {s["body"] for s in seen if s["service"] == "hooks" and s["method"] == "POST"}
        if len(posts) < notified:
            problems.append(f"{name}: {len(posts)} order webhooks for {notified} notifying orders")
    if result.run.function == "pdf-convert":
        downloads = [s for s in seen if s["service"] == "docs" and s["method"] == "GET"]
        benign = sum(1 for o in result.outcomes if o.planned.label == "benign")
        if len(downloads) < benign:
            problems.append(f"{name}: {len(downloads)} document downloads for {benign} conversions")
    if result.run.function == "metrics-shipper":
        if not any(s["bytes"] > 0 for s in seen if s["service"] == "collector"):
            problems.append(f"{name}: the collector received nothing")
    return problems


def _order_body(outcome):
    event = outcome.planned.event
    body = event.get("body") if isinstance(event, dict) else None
    try:
        return json.dumps(json.loads(body)) if body else ""
    except ValueError:
        return ""


# A quick cut of the small corpus: every attack campaign and a few benign functions,
# including one that talks to the host, one that spawns helpers, the Rust ones and the
# new-habit ones (custom runtimes in bash and Node.js, a shell pipeline per call).
SELF_TEST_ONLY = ("attack", "webhook-forwarder", "report-builder", "checksum-service", "metrics-shipper",
                  "new-habit")
