"""Checks the metrics sam-template.yaml's dashboards and alarms use.

usage: check_template.py ROOT [--template FILE] [--emitted FILE.json]

Every metric a dashboard widget or an alarm uses — a metric row or a MetricStat, and the metric
names and dimension keys of a SEARCH or Metrics Insights (SELECT) expression — must be:
- one the extension emitted (with --emitted: a JSON list of {namespace, metric, dimensions:
  {name: [values seen]}} collected from a real run's EMF lines): same namespace, metric name
  and set of dimension names, and every fixed dimension value (other than the function's name
  and version, which depend on the deployment) one that was emitted;
- one docs/metrics.md lists (metric and dimension names).
With --emitted, docs/metrics.md must also list every emitted metric and nothing else.
AWS/Lambda metrics must be ones Lambda publishes. Exits non-zero naming every offending use.
"""
import argparse
import json
import re
import sys

from cfnlint.decode import cfn_yaml

LAMBDA_METRICS = {"PostRuntimeExtensionsDuration", "Duration", "Invocations", "Errors", "Throttles"}
LAMBDA_DIMENSIONS = {(), ("FunctionName",), ("FunctionName", "Resource"),
                     ("ExecutedVersion", "FunctionName", "Resource")}
# Their values name the deployment's function, not something the extension chooses.
DEPLOYMENT_DIMENSIONS = {"FunctionName", "FunctionVersion"}


class Use:
    """One metric a dashboard or an alarm uses. `metric` None: any (a SEARCH without a
    MetricName term); `exact` False: metrics with at least these dimensions."""

    def __init__(self, where, namespace, metric, dims, values=None, exact=True):
        self.where = where
        self.namespace = namespace
        self.metric = metric
        self.dims = tuple(sorted(set(dims)))
        self.values = values or {}
        self.exact = exact

    def __str__(self):
        dims = ", ".join(f"{d}={self.values[d]}" if d in self.values else d for d in self.dims)
        metric = self.metric or "(any metric)"
        return f"{self.where}: {self.namespace} {metric} [{dims}]"


class Unreadable(Exception):
    pass


def contract(root):
    """(namespace, {(metric, dims)}) from docs/metrics.md."""
    with open(f"{root}/docs/metrics.md") as f:
        doc = f.read()
    namespace = re.search(r"^Namespace: `([^`]+)`", doc, re.M).group(1)
    allowed = set()
    for line in doc.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[A-Z][A-Za-z]+", cells[0]) and cells[2]:
            allowed.add((cells[0], tuple(sorted(d.strip() for d in cells[2].split(",")))))
    # "`AnomalyScore` and the total `Findings` are also published with the dimensions `A, B`."
    also = r"^(.*?) (?:is|are) also published with the dimensions\s+`([^`]+)`"
    for names, dims in re.findall(also, doc, re.M | re.S):
        for name in re.findall(r"`([A-Z][A-Za-z]+)`", names.split("\n\n")[-1]):
            allowed.add((name, tuple(sorted(d.strip() for d in dims.split(",")))))
    return namespace, allowed


def unquote(s):
    s = s.strip()
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'" else s


def expression_uses(where, expr):
    """The metrics a SEARCH or SELECT expression reads; none for math over other ids."""
    uses = []
    for query in re.findall(r"SEARCH\(\s*'((?:[^'\\]|\\.)*)'", expr):
        schema = re.search(r"\{([^}]*)\}", query)
        if not schema:
            raise Unreadable(f"{where}: SEARCH without a {{namespace,dimensions}} schema: {query}")
        parts = [unquote(p) for p in schema.group(1).split(",")]
        terms = re.findall(r"""(\w+)\s*=\s*("[^"]*"|'[^']*'|[^\s)]+)""", query[schema.end():])
        metrics = [unquote(v) for k, v in terms if k == "MetricName"] or [None]
        keys = [k for k, _ in terms if k != "MetricName"]
        values = {k: unquote(v) for k, v in terms if k != "MetricName" and "${" not in v}
        for k in keys:
            if k not in parts[1:]:
                raise Unreadable(f"{where}: SEARCH term {k}= is not in its schema: {query}")
        for metric in metrics:
            uses.append(Use(where, parts[0], metric, parts[1:], values))
    for m in re.finditer(r"SELECT\s+\w+\(\s*([^)\s]+)\s*\)\s+FROM\s+(SCHEMA\(([^)]*)\)|\S+)(.*)",
                         expr, re.I | re.S):
        metric, source, schema, rest = m.groups()
        where_clause = re.split(r"GROUP BY|ORDER BY|LIMIT", rest, flags=re.I)[0]
        keys = re.findall(r"(\w+)\s*(?:=|!=|IN\b|LIKE\b)", where_clause, re.I)
        group = re.search(r"GROUP BY\s+(.*?)(?:ORDER BY|LIMIT|$)", rest, re.I | re.S)
        keys += [unquote(k) for k in group.group(1).split(",")] if group else []
        keys = [k for k in keys if k.upper() not in ("AND", "OR", "NOT")]
        if schema:
            parts = [unquote(p) for p in schema.split(",")]
            uses.append(Use(where, parts[0], unquote(metric), parts[1:] + keys))
        else:
            uses.append(Use(where, unquote(source), unquote(metric), keys, exact=False))
    return uses


def dashboard_body(res, name):
    body = res["Properties"]["DashboardBody"]
    if isinstance(body, dict) and "Fn::Sub" in body:
        body = body["Fn::Sub"]
        body = body[0] if isinstance(body, list) else body
    if not isinstance(body, str):
        raise Unreadable(f"dashboard {name}: a DashboardBody that is neither a string nor Fn::Sub")
    # ${...} stays as it is: inside a JSON string, a value that depends on the deployment.
    return json.loads(body)


def dashboard_uses(name, res):
    uses = []
    for i, widget in enumerate(dashboard_body(res, name)["widgets"]):
        props = widget.get("properties", {})
        where = f"dashboard {name} widget {i} ({props.get('title', widget.get('type'))!r})"
        previous = []
        for row in props.get("metrics", []):
            options = row[-1] if row and isinstance(row[-1], dict) else {}
            items = row[:-1] if options else list(row)
            if "expression" in options:
                uses += expression_uses(where, options["expression"])
            if not items:
                continue
            # "..." repeats the previous row's leading items, "." one item of it.
            if items[0] == "...":
                items = previous[: len(previous) - (len(items) - 1)] + items[1:]
            items = [previous[j] if it == "." and j < len(previous) else it
                     for j, it in enumerate(items)]
            previous = items
            if len(items) < 2 or len(items) % 2:
                raise Unreadable(f"{where}: unreadable metric row {row}")
            pairs = dict(zip(items[2::2], items[3::2]))
            values = {k: v for k, v in pairs.items() if isinstance(v, str) and "${" not in v}
            uses.append(Use(where, items[0], items[1], pairs, values))
    return uses


def metric_use(where, metric):
    namespace, name = metric.get("Namespace"), metric.get("MetricName")
    if not (isinstance(namespace, str) and isinstance(name, str)):
        raise Unreadable(f"{where}: a namespace or metric name that is not a plain string")
    dims = metric.get("Dimensions", [])
    values = {d["Name"]: d["Value"] for d in dims if isinstance(d.get("Value"), str)}
    return Use(where, namespace, name, [d["Name"] for d in dims], values)


def alarm_uses(name, res):
    where = f"alarm {name}"
    props = res["Properties"]
    uses = []
    if "MetricName" in props:
        uses.append(metric_use(where, props))
    for m in props.get("Metrics", []):
        metric = m.get("MetricStat", {}).get("Metric")
        if metric:
            uses.append(metric_use(f"{where} ({m.get('Id')})", metric))
        if "Expression" in m:
            uses += expression_uses(f"{where} ({m.get('Id')})", m["Expression"])
    return uses


def load_emitted(path):
    emitted = {}
    with open(path) as f:
        for e in json.load(f):
            key = (e["namespace"], e["metric"], tuple(sorted(e["dimensions"])))
            emitted[key] = {d: set(v) for d, v in e["dimensions"].items()}
    return emitted


def matches(use, key):
    """Whether the metric (namespace, metric, dims) is one `use` reads."""
    namespace, metric, dims = key
    return (namespace == use.namespace and use.metric in (None, metric)
            and (dims == use.dims if use.exact else set(use.dims) <= set(dims)))


def check_emitted(use, emitted):
    """Why `use` is not something the extension emitted, or None."""
    found = [key for key in emitted if matches(use, key)]
    if not found:
        near = sorted({f"{m} [{', '.join(d)}]" for (n, m, d) in emitted
                       if n == use.namespace and use.metric in (None, m)})
        hint = f" (emitted with: {'; '.join(near)})" if near else ""
        return f"not emitted by the extension: {use}{hint}"
    for dim, value in use.values.items():
        if dim in DEPLOYMENT_DIMENSIONS:
            continue
        seen = set().union(*(emitted[key].get(dim, set()) for key in found))
        if value not in seen:
            return (f"not emitted by the extension: {use}: no {dim}={value} "
                    f"(emitted: {', '.join(sorted(seen))})")
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--template")
    parser.add_argument("--emitted")
    args = parser.parse_args()
    with open(args.template or f"{args.root}/sam-template.yaml") as f:
        template = cfn_yaml.loads(f.read())
    namespace, allowed = contract(args.root)
    emitted = load_emitted(args.emitted) if args.emitted else None

    problems = []
    uses = []
    for name, res in template["Resources"].items():
        try:
            if res["Type"] == "AWS::CloudWatch::Dashboard":
                uses += dashboard_uses(name, res)
            elif res["Type"] == "AWS::CloudWatch::Alarm":
                uses += alarm_uses(name, res)
        except Unreadable as e:
            problems.append(f"cannot check: {e}")

    for use in uses:
        if use.namespace == "AWS/Lambda":
            if use.metric not in LAMBDA_METRICS or use.dims not in LAMBDA_DIMENSIONS:
                problems.append(f"not a Lambda metric: {use}")
            continue
        if not any(matches(use, (namespace, m, d)) for m, d in allowed):
            problems.append(f"not in docs/metrics.md: {use}")
        if emitted is not None:
            why = check_emitted(use, emitted)
            if why:
                problems.append(why)

    if emitted is not None:
        for (ns, metric, dims) in sorted(emitted):
            if ns != namespace or (metric, dims) not in allowed:
                problems.append(
                    f"emitted but not in docs/metrics.md: {ns} {metric} [{', '.join(dims)}]")
        emitted_names = {(m, d) for (ns, m, d) in emitted if ns == namespace}
        for metric, dims in sorted(allowed - emitted_names):
            problems.append(
                f"in docs/metrics.md but not emitted: {namespace} {metric} [{', '.join(dims)}]")

    against = f"{len(emitted)} emitted metrics and " if emitted is not None else ""
    print(f"{len(uses)} metric uses checked against {against}{len(allowed)} contract entries")
    if not uses:
        problems.append("no metric found in the template's dashboards and alarms")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
