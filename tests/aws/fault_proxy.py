"""An HTTP proxy in front of the local AWS server that misbehaves like a real endpoint under
load: the first N requests are refused with a throttling error, every request is delayed.

Usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT THROTTLE_FIRST DELAY_MS
Prints "ready" once listening; counts what it did on stderr.
"""

import http.client
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN, UPSTREAM, THROTTLE_FIRST, DELAY_MS = (int(a) for a in sys.argv[1:5])
lock = threading.Lock()
seen = {"requests": 0, "throttled": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            seen["requests"] += 1
            throttle = seen["throttled"] < THROTTLE_FIRST
            if throttle:
                seen["throttled"] += 1
        time.sleep(DELAY_MS / 1000)
        if throttle:
            payload = b'{"message":"Rate exceeded"}'
            self.send_response(429)
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        up = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        up.request(self.command, self.path, body=body, headers=headers)
        resp = up.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        up.close()
        print(f"requests={seen['requests']} throttled={seen['throttled']}", file=sys.stderr, flush=True)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any


server = ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler)
print("ready", flush=True)
server.serve_forever()
