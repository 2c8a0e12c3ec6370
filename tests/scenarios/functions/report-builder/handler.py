"""Report builder: renders a CSV report, sorts it with the system `sort` and compresses it with
`gzip` (fixed command lines, no shell), and returns the archive's size and digest, with the
archive itself inline when it is small."""

import base64
import hashlib
import json
import subprocess

REPORTS = {"sales": ("region", "sku", "units", "revenue"),
           "inventory": ("warehouse", "sku", "on_hand", "reserved"),
           "refunds": ("region", "order", "reason", "amount")}
INLINE_LIMIT = 64 * 1024


def render(kind, rows, seed):
    columns = REPORTS[kind]
    lines = [",".join(columns)]
    state = seed | 1
    for _ in range(rows):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        lines.append(f"R{state % 17},SKU-{state % 3999:04d},{state % 500},{(state >> 8) % 100000 / 100:.2f}")
    return "\n".join(lines[1:]) + "\n", lines[0]


def handler(event, context):
    kind = event.get("report")
    if kind not in REPORTS:
        return {"statusCode": 400, "error": f"unknown report {kind!r}"}
    rows = int(event.get("rows", 100))
    body, header = render(kind, rows, int(event.get("seed", 1)))
    ordered = subprocess.run(["sort", "-t", ",", "-k2,2", "-k1,1"], input=body.encode(),
                             capture_output=True, check=True).stdout
    archive = subprocess.run(["gzip", "-c", "-6"], input=header.encode() + b"\n" + ordered,
                             capture_output=True, check=True).stdout
    print(json.dumps({"msg": "report", "kind": kind, "rows": rows, "gz_bytes": len(archive)}))
    result = {"statusCode": 200, "report": kind, "rows": rows, "bytes": len(archive),
              "sha256": hashlib.sha256(archive).hexdigest()}
    if len(archive) <= INLINE_LIMIT:
        result["archive_b64"] = base64.b64encode(archive).decode()
    return result
