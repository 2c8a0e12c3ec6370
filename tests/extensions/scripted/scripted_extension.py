#!/usr/bin/env python3
"""A small external extension written against the raw Extensions and Telemetry APIs, used by the
sandbox conformance tests for behaviour the reference extension does not have.

Behaviour is chosen by environment variables:
  SCRIPTED_OUT              file to append JSON lines to (what it saw and did)
  SCRIPTED_IGNORE_SHUTDOWN  1: on SHUTDOWN keep running past the deadline, then note "survived"
  SCRIPTED_SUBSCRIBE        JSON subscription body to try (its HTTP status is noted); the
                            destination URI is filled in
  SCRIPTED_REJECT_FIRST     answer the first N telemetry deliveries with HTTP 500
  SCRIPTED_INIT_ERROR       1: report /extension/init/error right after registering, then exit
  SCRIPTED_POST_TELEMETRY   a local port: on the first INVOKE, POST a telemetry batch holding
                            event types nobody documents yet to it, as Lambda would deliver it
"""
import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]
NAME = os.path.basename(sys.argv[0])
OUT = os.environ.get("SCRIPTED_OUT")
LOCK = threading.Lock()


def note(**fields):
    if not OUT:
        return
    fields["at_ms"] = int(time.time() * 1000)
    with LOCK, open(OUT, "a") as f:
        f.write(json.dumps(fields) + "\n")


def call(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(API + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Telemetry(http.server.BaseHTTPRequestHandler):
    rejected = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        limit = int(os.environ.get("SCRIPTED_REJECT_FIRST", "0"))
        if Telemetry.rejected < limit:
            Telemetry.rejected += 1
            self.send_response(500)
            self.end_headers()
            return
        for event in json.loads(body):
            if event["type"].startswith("platform."):
                note(kind="telemetry", type=event["type"], record=event["record"])
            else:
                note(kind="log", type=event["type"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def post_strange_batch(port, request_id):
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    batch = [
        {"time": now, "type": "platform.restoreStart", "record": {"runtimeVersion": "python:3.12"}},
        {"time": now, "type": "platform.somethingNew", "record": {"requestId": request_id, "x": [1, 2]}},
        {"time": now, "type": "function", "record": "a line from the future"},
    ]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(batch).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    status, headers, _ = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE", "SHUTDOWN"]},
                              {"Lambda-Extension-Name": NAME})
    ext_id = headers["Lambda-Extension-Identifier"]
    note(kind="registered", status=status)
    if os.environ.get("SCRIPTED_INIT_ERROR") == "1":
        status, _, _ = call("POST", "/2020-01-01/extension/init/error",
                            {"errorMessage": "cannot start", "errorType": "Extension.ConfigInvalid", "stackTrace": []},
                            {"Lambda-Extension-Identifier": ext_id,
                             "Lambda-Extension-Function-Error-Type": "Extension.ConfigInvalid"})
        note(kind="init_error", status=status)
        return
    subscription = os.environ.get("SCRIPTED_SUBSCRIBE")
    if subscription:
        server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Telemetry)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        body = json.loads(subscription)
        body["destination"] = {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{server.server_port}"}
        status, _, text = call("PUT", "/2022-07-01/telemetry", body, {"Lambda-Extension-Identifier": ext_id})
        note(kind="subscribe", status=status, body=text.decode(errors="replace"))
    while True:
        status, _, body = call("GET", "/2020-01-01/extension/event/next", None, {"Lambda-Extension-Identifier": ext_id})
        event = json.loads(body)
        note(kind="event", event=event)
        port = os.environ.get("SCRIPTED_POST_TELEMETRY")
        if port and event.get("eventType") == "INVOKE":
            note(kind="posted", status=post_strange_batch(port, event["requestId"]))
            os.environ.pop("SCRIPTED_POST_TELEMETRY")
        if event.get("eventType") == "SHUTDOWN":
            if os.environ.get("SCRIPTED_IGNORE_SHUTDOWN") == "1":
                deadline = event["deadlineMs"] / 1000.0
                time.sleep(max(0.0, deadline - time.time()) + 1.5)
                note(kind="survived")
            return


if __name__ == "__main__":
    main()
