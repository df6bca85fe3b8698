"""A Python Lambda handler, run unmodified by Gust's python3.x runtimes.

It answers direct invocations and function-URL requests.
"""

import json
import logging

logger = logging.getLogger()


def handler(event, context):
    event = event or {}
    name = (event.get("queryStringParameters") or {}).get("name") or event.get("name") or "world"
    logger.info("greeting %s; %d ms left", name, context.get_remaining_time_in_millis())
    body = {"message": "Hello, %s!" % name, "requestId": context.aws_request_id}
    if "requestContext" in event and "http" in event["requestContext"]:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
    return body
