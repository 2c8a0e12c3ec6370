"""Orders API (API Gateway proxy integration): validates a new order, prices it and answers
201, or 400 for a bad request. A price that does not match the catalogue raises, as a real
inconsistency in the pricing data would, and shows up as a function error."""

import json
import uuid

CURRENCIES = {"EUR": 0.20, "USD": 0.0, "GBP": 0.20, "CHF": 0.081}
CATALOGUE = {f"SKU-{n:04d}": round(3.5 + (n * 7.31) % 180, 2) for n in range(1, 400)}


class PricingError(Exception):
    """The order's prices disagree with the catalogue."""


def validate(order):
    problems = []
    if not str(order.get("customer_id", "")).startswith("C"):
        problems.append("customer_id")
    if order.get("currency") not in CURRENCIES:
        problems.append("currency")
    items = order.get("items")
    if not isinstance(items, list) or not items:
        problems.append("items")
        return problems
    for i, item in enumerate(items):
        if item.get("sku") not in CATALOGUE:
            problems.append(f"items[{i}].sku")
        if not isinstance(item.get("qty"), int) or not 0 < item["qty"] <= 100:
            problems.append(f"items[{i}].qty")
    return problems


def price(order):
    subtotal = 0.0
    for item in order["items"]:
        listed = CATALOGUE[item["sku"]]
        if "unit_price" in item and abs(item["unit_price"] - listed) > 0.01:
            raise PricingError(f"{item['sku']}: client price {item['unit_price']} != {listed}")
        subtotal += listed * item["qty"]
    tax = round(subtotal * CURRENCIES[order["currency"]], 2)
    return round(subtotal, 2), tax


def handler(event, context):
    try:
        order = json.loads(event.get("body") or "{}")
    except json.JSONDecodeError:
        return {"statusCode": 400, "body": json.dumps({"error": "body is not JSON"})}
    problems = validate(order)
    if problems:
        print(json.dumps({"msg": "rejected", "problems": problems}))
        return {"statusCode": 400, "body": json.dumps({"error": "invalid", "fields": problems})}
    subtotal, tax = price(order)
    order_id = str(uuid.uuid5(uuid.NAMESPACE_URL, event.get("requestContext", {}).get("requestId", "")))
    print(json.dumps({"msg": "accepted", "order_id": order_id, "total": subtotal + tax}))
    body = {"order_id": order_id, "subtotal": subtotal, "tax": tax, "total": round(subtotal + tax, 2),
            "lines": len(order["items"])}
    return {"statusCode": 201, "body": json.dumps(body)}
