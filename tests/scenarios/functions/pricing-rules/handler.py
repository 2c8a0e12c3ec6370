"""Pricing rules engine: evaluates a merchant-defined price expression (e.g.
`base * qty * (1 - discount)`) against the order's variables.

Vulnerable on purpose: the expression goes to Python's eval with the builtins still reachable,
so a request can run any code it likes."""

import json
import math


def handler(event, context):
    expression = event["expression"]
    variables = dict(event.get("vars", {}))
    price = eval(expression, {"math": math}, variables)
    price = round(float(price), 2)
    print(json.dumps({"msg": "priced", "rule": event.get("rule_id"), "price": price}))
    return {"rule_id": event.get("rule_id"), "price": price, "currency": event.get("currency", "EUR")}
