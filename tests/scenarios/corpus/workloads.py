"""Seeded generators of benign events, one per function. Sizes are log-normal (many small
requests, a long tail of big ones) and each function has its own rate of legitimate errors."""

import base64
import json
import math
import pickle
import uuid


def lognormal(rng, median, sigma, low, high):
    """An integer from a log-normal distribution with the given median, clamped."""
    return int(min(high, max(low, rng.lognormvariate(math.log(median), sigma))))


def request_id(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def api_event(rng, method, path, body=None, query=None, headers=None):
    """An API Gateway (REST, proxy integration) event."""
    return {
        "resource": path, "path": path, "httpMethod": method,
        "headers": {"Content-Type": "application/json", "User-Agent": "Mozilla/5.0",
                    **(headers or {})},
        "queryStringParameters": query,
        "requestContext": {"requestId": request_id(rng), "stage": "prod",
                           "identity": {"sourceIp": f"203.0.113.{rng.randint(1, 254)}"}},
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def thumbnailer(rng, ports):
    width = lognormal(rng, 400, 0.7, 16, 1800)
    height = int(width * rng.choice((0.5625, 0.75, 1.0, 1.333)))
    if rng.random() < 0.01:
        height = 0  # a corrupt upload: rejected with 422
    sizes = sorted(rng.sample((64, 128, 256, 512), rng.randint(1, 3)))
    return {"image": {"id": f"img-{rng.getrandbits(40):010x}", "width": width, "height": height,
                      "format": rng.choice(("jpeg", "png", "webp"))}, "sizes": sizes}


def orders_api(rng, ports):
    items = [{"sku": f"SKU-{rng.randint(1, 399):04d}", "qty": lognormal(rng, 1.5, 0.8, 1, 40)}
             for _ in range(lognormal(rng, 3, 0.7, 1, 40))]
    order = {"customer_id": f"C{rng.randint(1, 99999):05d}",
             "currency": rng.choice(("EUR", "EUR", "USD", "GBP", "CHF")), "items": items}
    roll = rng.random()
    if roll < 0.04:
        items[0]["qty"] = rng.choice((0, -1, 500))  # client bug: 400
    elif roll < 0.06:
        order["currency"] = "XYZ"  # unknown currency: 400
    elif roll < 0.07:
        items[0]["unit_price"] = 0.01  # stale client price list: PricingError
    return api_event(rng, "POST", "/orders", body=order)


def webhook_forwarder(rng, ports):
    entries = lognormal(rng, 12, 1.1, 1, 2000)
    payload = {"event": rng.choice(("invoice.paid", "user.created", "shipment.updated")),
               "id": f"evt_{rng.getrandbits(48):012x}",
               "data": [{"k": n, "v": rng.getrandbits(32)} for n in range(entries)]}
    return {"topic": rng.choice(("billing", "crm", "logistics")), "payload": payload}


def nightly_batch(rng, ports):
    day = rng.randint(1, 28)
    return {"version": "0", "id": request_id(rng), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012",
            "time": f"2024-06-{day:02d}T02:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/nightly-rollup"],
            "detail": {"partition": f"2024-06-{day:02d}", "rows": lognormal(rng, 120000, 0.6, 10000, 600000)}}


def report_builder(rng, ports):
    kind = rng.choice(("sales", "sales", "inventory", "refunds"))
    if rng.random() < 0.02:
        kind = "forecast"  # not implemented: 400
    return {"report": kind, "rows": lognormal(rng, 2000, 1.0, 20, 100000), "seed": rng.getrandbits(31)}


def checksum_service(rng, ports):
    size = lognormal(rng, 256 * 1024, 1.2, 4096, 32 * 1024 * 1024)
    event = {"burn_ms": max(1, size // (400 * 1024)), "log_lines": 1,
             "response_bytes": 64 * (1 + size // (1 << 20))}
    if size > 2 * 1024 * 1024:
        event["write_tmp"] = {"path": "/tmp/spool.bin", "bytes": size}
    if rng.random() < 0.01:
        event["fail"] = "checksum mismatch"
    return event


def metrics_shipper(rng, ports):
    event = {"send": {"host": "host.sandbox", "port": ports["collector"],
                      "bytes": lognormal(rng, 16 * 1024, 1.0, 512, 2 * 1024 * 1024)},
             "sleep_ms": rng.choice((0, 0, 2, 5, 15)), "log_lines": rng.randint(1, 3)}
    if rng.random() < 0.05:
        event["connect"] = {"host": "host.sandbox", "port": ports["collector"], "count": 1}
    if rng.random() < 0.01:
        event["fail"] = "collector rejected batch"
    return event


def doc_convert(rng, ports):
    year = rng.choice((2023, 2024))
    event = {"bucket": "acme-uploads", "key": f"invoices/{year}/inv-{rng.randint(1, 99999):05d}.pdf",
             "size": lognormal(rng, 64 * 1024, 1.2, 512, 8 * 1024 * 1024),
             "level": str(rng.choice((1, 6, 6, 6, 9)))}
    if rng.random() < 0.01:
        del event["key"]  # malformed S3 event: KeyError
    return event


def session_cookie(session):
    return base64.b64encode(pickle.dumps(session, protocol=4)).decode()


def session_api(rng, ports):
    headers = {}
    if rng.random() > 0.05:  # 5% arrive without a session: 401
        cart = [{"sku": f"SKU-{rng.randint(1, 399):04d}", "qty": rng.randint(1, 4),
                 "price": round(rng.uniform(2, 250), 2)} for _ in range(lognormal(rng, 3, 0.9, 0, 60))]
        session = {"user": f"u{rng.getrandbits(24):06x}", "cart": cart,
                   "currency": rng.choice(("EUR", "USD")), "issued": 1717200000 + rng.randint(0, 10**6)}
        headers["Cookie"] = f"lang=en; session={session_cookie(session)}"
    path = "/cart/details" if rng.random() < 0.3 else "/cart"
    return api_event(rng, "GET", path, headers=headers)


RULES = (
    ("base-qty", "base * qty", ("base", "qty")),
    ("discount", "base * qty * (1 - discount)", ("base", "qty", "discount")),
    ("tiered", "base * qty * (0.9 if qty >= 10 else 1.0)", ("base", "qty")),
    ("shipping", "base * qty + max(4.99, weight * 1.2)", ("base", "qty", "weight")),
    ("vat", "round(base * qty * (1 + vat), 2)", ("base", "qty", "vat")),
    ("per-unit-fee", "base * qty + fee / qty", ("base", "qty", "fee")),
    ("log-bundle", "base * qty * (1 - min(0.3, math.log10(qty) / 10))", ("base", "qty")),
)


def pricing_rules(rng, ports):
    rule_id, expression, names = rng.choice(RULES)
    values = {"base": round(rng.uniform(1, 500), 2), "qty": lognormal(rng, 3, 1.0, 1, 500),
              "discount": rng.choice((0.05, 0.1, 0.15, 0.25)), "weight": round(rng.uniform(0.1, 30), 1),
              "vat": rng.choice((0.07, 0.19, 0.2)), "fee": rng.choice((0.5, 1.0, 2.5))}
    variables = {n: values[n] for n in names}
    if rule_id == "per-unit-fee" and rng.random() < 0.1:
        variables["qty"] = 0  # empty basket: ZeroDivisionError
    return {"rule_id": rule_id, "expression": expression, "vars": variables,
            "currency": rng.choice(("EUR", "USD"))}


def customer_export(rng, ports):
    fields = ",".join(rng.sample(("id", "name", "email", "country", "tier"), rng.randint(1, 5)))
    query = {"segment": rng.choice(("emea", "amer", "apac", "smb", "enterprise")),
             "limit": str(lognormal(rng, 50, 0.9, 5, 1000)),
             "offset": str(rng.randint(0, 200) * 50), "fields": fields}
    if rng.random() < 0.02:
        query["segment"] = "latam"  # not provisioned: 404
    return api_event(rng, "GET", "/customers/export", query=query)


# --- new habits: custom runtimes and a shell pipeline per call ---------------------------
CATEGORIES = ("books", "toys", "garden", "kitchen", "office", "sports")


def order_batch(rng):
    """An order batch as a marketplace export sends it: lines with category and warehouse."""
    items = [{"sku": f"SKU-{rng.randint(1, 399):04d}", "category": rng.choice(CATEGORIES),
              "warehouse": rng.choice(("DUB1", "FRA2", "IAD5", "NRT1")),
              "qty": lognormal(rng, 2, 0.9, 1, 60), "price": round(rng.uniform(1, 300), 2)}
             for _ in range(lognormal(rng, 12, 1.0, 1, 400))]
    return {"batch_id": f"b-{rng.getrandbits(40):010x}", "min_qty": rng.choice((1, 1, 1, 2, 5)),
            "items": items}


def bash_runtime(rng, ports):
    batch = order_batch(rng)
    batch["group_by"] = rng.choice(("category", "category", "warehouse", "sku"))
    if rng.random() < 0.02:
        batch["items"][0]["price"] = str(batch["items"][0]["price"])  # jq fails: function error
    return batch


# Merchants' confirmation templates (None: the function's default one).
NODE_TEMPLATES = (
    None, None,
    "Hi {{customer.name.split(' ')[0]}}, we got your {{lines}} {{plural(lines, 'line')}}: "
    "{{money(total, currency)}}.",
    "{{upper(customer.tier)}} order {{orderId}} ships {{ships(2)}}",
    "Order {{orderId}} for {{customer.email}}: {{items.map((i) => i.qty + ' x ' + i.sku).join(', ')}}",
    "Total {{money(total, currency)}} incl. {{money(tax, currency)}} tax. Thank you!",
)


def node_order(rng):
    """A valid order for node-api (no template, no webhook)."""
    items = [{"sku": f"SKU-{rng.randint(1, 399):04d}", "qty": lognormal(rng, 1.5, 0.8, 1, 40)}
             for _ in range(lognormal(rng, 3, 0.7, 1, 40))]
    return {"customer_id": f"C{rng.randint(1, 99999):05d}",
            "currency": rng.choice(("EUR", "EUR", "USD", "GBP", "CHF")), "items": items}


def node_api(rng, ports):
    order = node_order(rng)
    template = rng.choice(NODE_TEMPLATES)
    if template:
        order["template"] = template
    if rng.random() < 0.3:
        order["notify"] = True  # the merchant's fulfilment webhook (the host's `hooks`)
    roll = rng.random()
    if roll < 0.04:
        order["items"][0]["qty"] = rng.choice((0, -2, 250))  # client bug: 400
    elif roll < 0.05:
        order["currency"] = "JPY"  # not offered: 400
    elif roll < 0.06:
        order["template"] = "Hi {{customer.nmae.split(' ')[0]}}!"  # typo: TypeError, a 502
    return api_event(rng, "POST", "/orders", body=order)


def pdf_url(rng, ports, tenant=None):
    tenant = tenant or rng.choice(("acme", "acme", "globex", "initech", "umbrella"))
    pages = lognormal(rng, 4, 0.9, 1, 120)
    return (f"http://host.sandbox:{ports['docs']}/docs/{tenant}/{pages}/"
            f"{rng.choice(('inv', 'po', 'cn'))}-{rng.randint(1, 99999):05d}.pdf")


def pdf_convert(rng, ports):
    # 2% point at a tenant the bucket no longer has: a 404 page, which is not a PDF (422).
    url = pdf_url(rng, ports, "legacy" if rng.random() < 0.02 else None)
    return {"document": {"id": f"doc-{rng.getrandbits(40):010x}", "url": url,
                         "content_type": "application/pdf"},
            "requested_by": f"u{rng.getrandbits(24):06x}"}


BENIGN = {
    "thumbnailer": thumbnailer, "orders-api": orders_api, "webhook-forwarder": webhook_forwarder,
    "nightly-batch": nightly_batch, "report-builder": report_builder,
    "checksum-service": checksum_service, "metrics-shipper": metrics_shipper,
    "doc-convert": doc_convert, "session-api": session_api, "pricing-rules": pricing_rules,
    "customer-export": customer_export, "bash-runtime": bash_runtime, "node-api": node_api,
    "pdf-convert": pdf_convert,
}
