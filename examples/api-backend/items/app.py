"""A small REST service whose items live in the Gust KV bucket "items".

    POST   /items        create an item from {"name": "...", "price": 1.5}
    GET    /items        list items
    GET    /items/{id}   one item
    DELETE /items/{id}   delete an item

It runs unmodified as an AWS Lambda handler behind a function URL. Gust
gives a function granted buckets the node's address and a token scoped to
its grants (GUST_API_URL, GUST_TOKEN), as Lambda gives a function its
role's credentials; the standard library is all it needs.
"""
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

BUCKET = "items"


class StorageError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _kv(method, key="", body=None, headers=None):
    url = os.environ["GUST_API_URL"] + "/gust/v1/kv/" + BUCKET
    if key:
        url += "/" + urllib.parse.quote(key, safe="")
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", "Bearer " + os.environ["GUST_TOKEN"])
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        raise StorageError(e.code, detail) from None


def _reply(status, value):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(value)}


def handler(event, context):
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    parts = [p for p in event.get("rawPath", "/").split("/") if p]
    try:
        if parts == ["items"] and method == "POST":
            try:
                body = json.loads(event.get("body") or "{}")
                name, price = str(body["name"]).strip(), float(body.get("price", 0))
            except (ValueError, KeyError, TypeError):
                return _reply(400, {"error": 'body must be JSON like {"name":"tea","price":2.5}'})
            if not name or price < 0:
                return _reply(400, {"error": "name is required and price must not be negative"})
            item = {"id": secrets.token_hex(8), "name": name, "price": price, "created": int(time.time())}
            # If-None-Match: * creates only: an id is never overwritten.
            _kv("PUT", item["id"], json.dumps(item).encode(), {"If-None-Match": "*"})
            return _reply(201, item)
        if parts == ["items"] and method == "GET":
            listing = json.loads(_kv("GET"))
            items = []
            for k in listing.get("keys") or []:
                try:
                    items.append(json.loads(_kv("GET", k["key"])))
                except StorageError as e:
                    if e.status != 404:  # deleted meanwhile
                        raise
            return _reply(200, {"items": items})
        if len(parts) == 2 and parts[0] == "items" and method == "GET":
            return _reply(200, json.loads(_kv("GET", parts[1])))
        if len(parts) == 2 and parts[0] == "items" and method == "DELETE":
            _kv("DELETE", parts[1])
            return {"statusCode": 204}
        return _reply(404, {"error": "no such route: %s /%s" % (method, "/".join(parts))})
    except StorageError as e:
        if e.status == 404:
            return _reply(404, {"error": "no such item"})
        return _reply(502, {"error": "storage: %d %s" % (e.status, e)})
