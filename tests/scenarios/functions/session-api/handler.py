"""Shopping-cart API (API Gateway proxy integration): restores the caller's session from its
cookie and answers with the cart summary.

Vulnerable on purpose: the session cookie is an unsigned base64 pickle, so a crafted cookie runs
arbitrary code while it is being loaded (insecure deserialisation)."""

import base64
import json
import pickle


def session_from(headers):
    cookie = headers.get("Cookie") or headers.get("cookie") or ""
    for part in cookie.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "session" and value:
            return pickle.loads(base64.b64decode(value))
    return None


def handler(event, context):
    session = session_from(event.get("headers") or {})
    if not session:
        return {"statusCode": 401, "body": json.dumps({"error": "no session"})}
    cart = session.get("cart", [])
    total = sum(item["price"] * item["qty"] for item in cart)
    print(json.dumps({"msg": "cart", "user": session.get("user"), "items": len(cart)}))
    body = {"user": session.get("user"), "items": len(cart), "total": round(total, 2),
            "currency": session.get("currency", "EUR")}
    if event.get("path") == "/cart/details":
        body["lines"] = cart
    return {"statusCode": 200, "body": json.dumps(body)}
