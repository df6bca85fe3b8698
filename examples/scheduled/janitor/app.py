"""Scheduled automation: every minute, summarise and prune old records.

The records are JSON objects with "at" (Unix seconds) and "kind" in the KV
bucket "records". Each run counts the records of each kind, deletes those
older than RETENTION_SECONDS (default 3600) and writes the summary to the
key "latest" of the bucket "reports", where the CLI, a dashboard or another
function can read it. The event is EventBridge's scheduled event.
"""
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request


def _api(method, path, body=None):
    req = urllib.request.Request(os.environ["GUST_API_URL"] + path, data=body, method=method)
    req.add_header("Authorization", "Bearer " + os.environ["GUST_TOKEN"])
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read()


def _key(bucket, key=""):
    path = "/gust/v1/kv/" + bucket
    return path + "/" + urllib.parse.quote(key, safe="") if key else path


def handler(event, context):
    retention = int(os.environ.get("RETENTION_SECONDS", "3600"))
    now = time.time()
    summary = {"at": int(now), "scheduled": event.get("time", ""), "kept": 0, "pruned": 0,
               "invalid": 0, "byKind": {}, "retentionSeconds": retention}
    marker = ""
    while True:
        page = json.loads(_api("GET", _key("records") + "?limit=1000" + ("&marker=" + urllib.parse.quote(marker) if marker else "")))
        for k in page.get("keys") or []:
            try:
                rec = json.loads(_api("GET", _key("records", k["key"])))
                at, kind = float(rec["at"]), str(rec.get("kind", ""))
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    continue  # deleted meanwhile
                raise
            except (ValueError, KeyError, TypeError):
                summary["invalid"] += 1
                continue
            if now - at > retention:
                _api("DELETE", _key("records", k["key"]))
                summary["pruned"] += 1
                continue
            summary["kept"] += 1
            summary["byKind"][kind] = summary["byKind"].get(kind, 0) + 1
        marker = page.get("nextMarker", "")
        if not marker:
            break
    _api("PUT", _key("reports", "latest"), json.dumps(summary).encode())
    return summary
