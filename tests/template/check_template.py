"""Checks sam-template.yaml's dashboard and alarms against docs/metrics.md: every Warden metric
they plot, with its dimension names, must be one the metrics contract lists, and every AWS/Lambda
metric one Lambda publishes. Exits non-zero with the offending entries."""
import json
import re
import sys

from cfnlint.decode import cfn_yaml

ROOT = sys.argv[1]
LAMBDA_METRICS = {"PostRuntimeExtensionsDuration", "Duration", "Invocations", "Errors", "Throttles"}


def contract():
    allowed = set()
    with open(f"{ROOT}/docs/metrics.md") as f:
        for line in f:
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            if len(cells) >= 3 and re.fullmatch(r"[A-Z][A-Za-z]+", cells[0]) and cells[2]:
                dims = tuple(sorted(d.strip() for d in cells[2].split(",")))
                allowed.add((cells[0], dims))
    return allowed


def dashboard_metrics(template):
    body = template["Resources"]["WardenDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    body = re.sub(r"\$\{[^}]+\}", "x", body)
    found = []
    for widget in json.loads(body)["widgets"]:
        for row in widget["properties"].get("metrics", []):
            items = [i for i in row if not isinstance(i, dict)]
            if len(items) < 2:
                continue  # a math or SEARCH expression
            namespace, name, rest = items[0], items[1], items[2:]
            found.append((namespace, name, tuple(sorted(rest[0::2]))))
    return found


def alarm_metrics(template):
    found = []
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = res["Properties"]
        if "MetricName" in props:
            dims = tuple(sorted(d["Name"] for d in props.get("Dimensions", [])))
            found.append((props["Namespace"], props["MetricName"], dims))
        for m in props.get("Metrics", []):
            metric = m.get("MetricStat", {}).get("Metric")
            if metric:
                dims = tuple(sorted(d["Name"] for d in metric.get("Dimensions", [])))
                found.append((metric["Namespace"], metric["MetricName"], dims))
    return found


def main():
    with open(f"{ROOT}/sam-template.yaml") as f:
        template = cfn_yaml.loads(f.read())
    allowed = contract()
    used = dashboard_metrics(template) + alarm_metrics(template)
    bad = []
    for namespace, name, dims in used:
        if namespace == "Warden" and (name, dims) not in allowed:
            bad.append((namespace, name, dims))
        elif namespace == "AWS/Lambda" and name not in LAMBDA_METRICS:
            bad.append((namespace, name, dims))
        elif namespace not in ("Warden", "AWS/Lambda"):
            bad.append((namespace, name, dims))
    print(f"{len(used)} metric references checked against {len(allowed)} contract entries")
    if bad or not used:
        print("not in the metrics contract:", bad)
        sys.exit(1)


if __name__ == "__main__":
    main()
