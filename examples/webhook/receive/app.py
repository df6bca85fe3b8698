"""A GitHub-style webhook endpoint.

It checks X-Hub-Signature-256 (sha256=HEX, the HMAC-SHA256 of the body with
the shared secret in WEBHOOK_SECRET), refuses a missing or wrong signature
with 401, records each accepted delivery in the KV bucket "deliveries"
(keyed by X-GitHub-Delivery, so a redelivery is recorded once) and answers
202 at once: GitHub waits 10 seconds at most, so slow work belongs in a
function that a trigger on the bucket invokes.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

BUCKET = "deliveries"
DELIVERY_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _record(key, value):
    """Stores value under key unless it exists; False if it did."""
    url = "%s/gust/v1/kv/%s/%s" % (os.environ["GUST_API_URL"], BUCKET, urllib.parse.quote(key, safe=""))
    req = urllib.request.Request(url, data=value, method="PUT")
    req.add_header("Authorization", "Bearer " + os.environ["GUST_TOKEN"])
    req.add_header("If-None-Match", "*")
    try:
        with urllib.request.urlopen(req, timeout=3):
            return True
    except urllib.error.HTTPError as e:
        if e.code == 412:
            return False
        raise


def _reply(status, value):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(value)}


def valid_signature(secret, body, header):
    if not header or not header.startswith("sha256="):
        return False
    want = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, header[len("sha256="):])


def handler(event, context):
    if event.get("requestContext", {}).get("http", {}).get("method") != "POST":
        return _reply(405, {"error": "webhooks are POSTed"})
    secret = os.environ.get("WEBHOOK_SECRET", "").encode()
    if not secret:
        return _reply(500, {"error": "WEBHOOK_SECRET is not configured"})
    body = event.get("body") or ""
    body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if not valid_signature(secret, body, headers.get("x-hub-signature-256")):
        return _reply(401, {"error": "bad or missing X-Hub-Signature-256"})
    delivery = headers.get("x-github-delivery", "")
    if not DELIVERY_RE.match(delivery):
        delivery = hashlib.sha256(body).hexdigest()[:32]
    record = {"id": delivery, "event": headers.get("x-github-event", ""), "received": int(time.time()), "size": len(body)}
    try:
        payload = json.loads(body)
        record["action"] = payload.get("action", "")
        record["repository"] = (payload.get("repository") or {}).get("full_name", "")
    except (ValueError, AttributeError):
        pass
    first = _record("delivery-" + delivery, json.dumps(record).encode())
    return _reply(202, {"accepted": delivery, "duplicate": not first})
