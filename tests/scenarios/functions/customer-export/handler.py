"""Customer export API (API Gateway proxy integration): returns a page of a segment's customer
records with the requested fields.

Vulnerable on purpose: `limit` is not capped and `fields=*` includes every column, so one
request can pull the whole table into its response."""

import hashlib
import json

SEGMENTS = ("emea", "amer", "apac", "smb", "enterprise")
FIRST = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lea")
LAST = ("Silva", "Novak", "Okafor", "Tanaka", "Meyer", "Rossi", "Khan", "Dubois", "Larsen", "Ortiz")
PUBLIC = ("id", "name", "email", "country", "tier")


def customer(segment, n):
    h = hashlib.sha256(f"{segment}:{n}".encode()).hexdigest()
    first, last = FIRST[int(h[0:2], 16) % len(FIRST)], LAST[int(h[2:4], 16) % len(LAST)]
    return {
        "id": f"C{segment[:2].upper()}{n:07d}", "name": f"{first} {last}",
        "email": f"{first}.{last}{int(h[4:7], 16)}@example.com".lower(),
        "country": ("DE", "FR", "US", "IN", "BR", "JP", "GB")[int(h[7], 16) % 7],
        "tier": ("free", "pro", "business")[int(h[8], 16) % 3],
        "phone": f"+{int(h[9:11], 16)} {int(h[11:20], 16) % 10**9:09d}",
        "iban": f"DE{int(h[20:22], 16):02d}{int(h[22:40], 16) % 10**18:018d}",
        "address": f"{int(h[40:42], 16)} {last} Street, {segment.upper()}",
        "notes": h,
    }


def handler(event, context):
    params = event.get("queryStringParameters") or {}
    segment = params.get("segment", "emea")
    if segment not in SEGMENTS:
        return {"statusCode": 404, "body": json.dumps({"error": "unknown segment"})}
    try:
        limit, offset = int(params.get("limit", "50")), int(params.get("offset", "0"))
    except ValueError:
        return {"statusCode": 400, "body": json.dumps({"error": "limit and offset are integers"})}
    fields = params.get("fields", "id,name,email")
    wanted = None if fields == "*" else [f for f in fields.split(",") if f in PUBLIC]
    rows = []
    for n in range(offset, offset + limit):
        record = customer(segment, n)
        rows.append(record if wanted is None else {k: record[k] for k in wanted})
    print(json.dumps({"msg": "export", "segment": segment, "rows": len(rows)}))
    return {"statusCode": 200, "body": json.dumps({"segment": segment, "offset": offset, "rows": rows})}
