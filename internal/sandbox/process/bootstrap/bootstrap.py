"""Gust's Python runtime client.

Runs a Lambda handler (MODULE.FUNCTION in _HANDLER) from LAMBDA_TASK_ROOT
against the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API, with the standard
library only: def handler(event, context).
"""

import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback

API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
BASE = "/2018-06-01/runtime"
TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
HANDLER = os.environ.get("_HANDLER", "app.handler")

_conn = None


def request(method, path, body=None, headers=None):
    """One Runtime API call on a kept-alive connection, reconnecting once."""
    global _conn
    for attempt in (0, 1):
        if _conn is None:
            _conn = http.client.HTTPConnection(API)
        try:
            _conn.request(method, path, body=body, headers=headers or {})
            res = _conn.getresponse()
            return res.status, res.headers, res.read()
        except (ConnectionError, http.client.HTTPException):
            _conn.close()
            _conn = None
            if attempt:
                raise


def error_payload(exc, error_type=None, message=None):
    tb = traceback.format_list(traceback.extract_tb(exc.__traceback__))
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": tb,
    }


def post_error(path, payload):
    status, _, body = request(
        "POST",
        path,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": payload["errorType"]},
    )
    if status != 202:
        print("runtime API answered %d: %s" % (status, body), file=sys.stderr, flush=True)


class LambdaContext:
    """The context object of a Python Lambda handler."""

    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.client_context = _json_or_none(headers.get("Lambda-Runtime-Client-Context"))
        self.identity = _json_or_none(headers.get("Lambda-Runtime-Cognito-Identity"))

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _json_or_none(s):
    if not s:
        return None
    try:
        return json.loads(s)
    except ValueError:
        return None


class _RequestIdFilter(logging.Filter):
    request_id = None

    def filter(self, record):
        record.aws_request_id = self.request_id
        return True


def load_handler():
    module_name, _, fn_name = HANDLER.rpartition(".")
    module_name = module_name.replace("/", ".")
    if TASK_ROOT not in sys.path:
        sys.path.insert(0, TASK_ROOT)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        raise _InitError(e, "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module_name, e))
    except ImportError as e:
        raise _InitError(e, "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    except Exception as e:
        raise _InitError(e, None, None)
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        err = AttributeError("Handler '%s' missing on module '%s'" % (fn_name, module_name))
        raise _InitError(err, "Runtime.HandlerNotFound", str(err))
    return fn


class _InitError(Exception):
    def __init__(self, exc, error_type, message):
        super().__init__(message)
        self.payload = error_payload(exc, error_type, message)


def main():
    request_filter = _RequestIdFilter()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(request_filter)
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    try:
        fn = load_handler()
    except _InitError as e:
        print(json.dumps(e.payload), file=sys.stderr, flush=True)
        post_error(BASE + "/init/error", e.payload)
        sys.exit(1)

    while True:
        status, headers, body = request("GET", BASE + "/invocation/next")
        if status != 200:
            raise RuntimeError("runtime API answered %d to next: %r" % (status, body))
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        request_filter.request_id = request_id
        trace = headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        path = BASE + "/invocation/%s/" % request_id
        try:
            event = json.loads(body) if body else None
        except ValueError as e:
            post_error(path + "error", error_payload(e, "Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e))
            continue
        try:
            result = fn(event, LambdaContext(headers))
        except Exception as e:
            payload = error_payload(e)
            print("[ERROR] %s: %s" % (payload["errorType"], payload["errorMessage"]), file=sys.stdout, flush=True)
            sys.stdout.flush()
            sys.stderr.flush()
            post_error(path + "error", payload)
            continue
        try:
            out = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            post_error(path + "error", error_payload(e, "Runtime.MarshalError", "Unable to marshal response: %s" % e))
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        status, _, answer = request("POST", path + "response", out, {"Content-Type": "application/json"})
        if status != 202:
            print("runtime API answered %d: %s" % (status, answer), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
