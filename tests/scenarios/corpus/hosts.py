"""Servers on the host that the functions (and the attacks) talk to through the sandbox's host
link. Each listens on 127.0.0.1 only; the sandbox forwards `host.sandbox:PORT` to it
(`--host-forward`). Every server keeps a log of what it saw, which the self-test checks."""

import hashlib
import http.server
import json
import random
import select
import socketserver
import threading
import time
import urllib.parse

# Commands the reverse-shell listener types into a shell that connects back.
SHELL_COMMANDS = ("id", "uname -a", "ls /var/task", "ps -eo pid,comm | head -20",
                  "cat /proc/self/environ | tr '\\0' '\\n' | cut -d= -f1 | grep ^AWS_", "exit")
READ_TIMEOUT_S = 10.0
# What the dropper's staging server hands out, by path: real ELF binaries of this system
# (one that answers at once, one that works through its input for a while).
STAGE_BINARIES = {"/k": "/usr/bin/uname", "/h": "/usr/bin/sha256sum"}
# Ports miners use by default (Warden's mining-port list has them): the `stratum` pool listens on
# the first free one, the `pool` on any port, as a pool behind a proxy or a custom port would.
POOL_PORTS = (3333, 14444, 5555, 7777, 14433, 45700, 3334, 6666, 20535, 45560)
# Tenants the `docs` server has documents for (pdf-convert's uploads); others get a 404.
DOC_TENANTS = ("acme", "globex", "initech", "umbrella")
DOC_WORDS = ("invoice", "total", "amount", "due", "net", "tax", "item", "qty", "unit", "price",
             "shipping", "order", "customer", "account", "payment", "terms", "days", "ref", "eur")


class Log:
    """Thread-safe, append-only record of what the servers saw."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def add(self, service, **fields):
        with self._lock:
            self._items.append({"service": service, "at": time.time(), **fields})

    def mark(self):
        with self._lock:
            return len(self._items)

    def since(self, mark, service=None):
        with self._lock:
            items = self._items[mark:]
        return [i for i in items if service is None or i["service"] == service]


def _read_all(conn, limit=None):
    conn.settimeout(READ_TIMEOUT_S)
    total, chunks = 0, []
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            total += len(data)
            if limit is None or sum(len(c) for c in chunks) < limit:
                chunks.append(data)
    except OSError:
        pass
    return total, b"".join(chunks)


class _Server(socketserver.ThreadingTCPServer):
    """Counts connections being handled, so that a run's log can be read once they are done."""

    daemon_threads = True
    allow_reuse_address = True
    active = 0
    lock = threading.Lock()

    def process_request(self, request, client_address):
        with _Server.lock:
            _Server.active += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with _Server.lock:
                _Server.active -= 1


def _tcp(port, handle):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            handle(self.request)

    return _Server(("127.0.0.1", port), Handler)


def _http(port, log, name, answer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _reply(self, status, body=b""):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            status, body = answer("GET", self.path, b"")
            log.add(name, method="GET", path=self.path, status=status, bytes=0)
            self._reply(status, body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
            status, body = answer("POST", self.path, data)
            log.add(name, method="POST", path=self.path, status=status, bytes=len(data),
                    body=data[:8192].decode("latin-1"))
            self._reply(status, body)

    return _Server(("127.0.0.1", port), Handler)


class Services:
    """All host-side servers; `ports` maps a service name to its port."""

    NAMES = ("hooks", "collector", "exfil", "loot", "c2", "pool", "stage", "beacon", "docs",
             "stratum")

    def __init__(self, seed, port_base=None):
        self.log = Log()
        self.ports = {}
        self._servers = []
        self._rng = random.Random(f"{seed}:hooks")
        self._rng_lock = threading.Lock()
        self._stage = {}
        for path, binary in STAGE_BINARIES.items():
            with open(binary, "rb") as f:
                self._stage[path] = f.read()
        makers = {"hooks": self._hooks, "collector": self._sink("collector"),
                  "exfil": self._sink("exfil"), "loot": self._loot, "c2": self._c2,
                  "pool": self._pool, "stage": self._stage_server, "beacon": self._beacon,
                  "docs": self._docs, "stratum": self._pool}
        for n, name in enumerate(self.NAMES):
            port = 0 if port_base is None else port_base + n
            if name == "stratum":
                server = _first_free(makers[name], POOL_PORTS, port)
            else:
                server = makers[name](port)
            self.ports[name] = server.server_address[1]
            self._servers.append(server)

    def start(self):
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                             daemon=True).start()
        return self

    def settle(self, limit_s=15.0):
        """Waits until no connection is queued or being handled (the sandbox has exited, so
        what is left is the host side finishing), at most `limit_s`."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            with _Server.lock:
                busy = _Server.active
            queued = select.select([s.socket for s in self._servers], [], [], 0)[0]
            if not busy and not queued:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        # shutdown() waits for the serve loop's next poll: stop them all at once.
        stoppers = [threading.Thread(target=s.shutdown) for s in self._servers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        for server in self._servers:
            server.server_close()

    # --- benign endpoints -------------------------------------------------------------------
    def _hooks(self, port):
        def answer(method, path, data):
            with self._rng_lock:
                flaky = self._rng.random() < 0.04
            return (503, b"busy") if flaky else (200, b'{"ok":true}')
        return _http(port, self.log, "hooks", answer)

    def _docs(self, port):
        """Serves pdf-convert's uploads: /docs/<tenant>/<pages>/<name>.pdf, generated from the
        path (the query string is ignored, as a presigned URL's would be by a plain server)."""
        def answer(method, path, data):
            parts = urllib.parse.urlsplit(path).path.strip("/").split("/")
            if method != "GET" or len(parts) != 4 or parts[0] != "docs" or parts[1] not in DOC_TENANTS:
                return 404, b"not found"
            try:
                pages = max(1, min(200, int(parts[2])))
            except ValueError:
                return 404, b"not found"
            return 200, fake_pdf("/".join(parts), pages)
        return _http(port, self.log, "docs", answer)

    def _sink(self, name):
        def handle(conn):
            total, _ = _read_all(conn, limit=0)
            try:
                conn.sendall(b"ok\n")
            except OSError:
                pass
            self.log.add(name, bytes=total)
        return lambda port: _tcp(port, handle)

    # --- attacker infrastructure ------------------------------------------------------------
    def _loot(self, port):
        return _http(port, self.log, "loot", lambda m, p, d: (204, b""))

    def _stage_server(self, port):
        def answer(method, path, data):
            if method != "GET" or path not in self._stage:
                return 404, b""
            return 200, self._stage[path]
        return _http(port, self.log, "stage", answer)

    def _c2(self, port):
        def handle(conn):
            conn.settimeout(READ_TIMEOUT_S)
            try:
                for command in SHELL_COMMANDS:
                    conn.sendall(command.encode() + b"\n")
                    time.sleep(0.05)
            except OSError:
                pass
            _, transcript = _read_all(conn, limit=1 << 20)
            self.log.add("c2", transcript=transcript.decode("latin-1"))
        return _tcp(port, handle)

    def _pool(self, port):
        def handle(conn):
            conn.settimeout(READ_TIMEOUT_S)
            methods = []
            stream = conn.makefile("rwb")
            try:
                for line in stream:
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    methods.append(msg.get("method"))
                    for reply in _stratum_reply(msg):
                        stream.write(json.dumps(reply).encode() + b"\n")
                    stream.flush()
            except OSError:
                pass
            self.log.add("pool", methods=methods)
        return _tcp(port, handle)

    def _beacon(self, port):
        def handle(conn):
            # Logged as soon as the line is in: the sender may be frozen before it closes.
            conn.settimeout(READ_TIMEOUT_S)
            try:
                line = conn.makefile("rb").readline()
            except OSError:
                line = b""
            self.log.add("beacon", line=line.decode("latin-1").strip())
        return _tcp(port, handle)


def _first_free(make, ports, fallback):
    """The server `make` builds on the first of `ports` that is free, else on `fallback`."""
    for port in ports:
        try:
            return make(port)
        except OSError:
            continue
    return make(fallback)


def fake_pdf(name, pages):
    """A text-only PDF as an invoicing system writes them: `(text) Tj` lines, ~45 per page."""
    state = int(hashlib.sha256(name.encode()).hexdigest()[:12], 16) | 1
    out = [b"%PDF-1.4", b"%\xe2\xe3\xcf\xd3"]
    for page in range(pages):
        out.append(b"%d 0 obj << /Type /Page /Parent 1 0 R >> stream" % (page + 2))
        out.append(b"BT /F1 10 Tf 72 760 Td")
        for _ in range(45):
            words = []
            for _ in range(3 + state % 9):
                state = (state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
                words.append(DOC_WORDS[(state >> 33) % len(DOC_WORDS)])
            out.append(b"(" + " ".join(words).encode() + b") Tj 0 -14 Td")
        out.append(b"ET endstream endobj")
    out.append(b"trailer << /Root 1 0 R >>")
    out.append(b"%%EOF")
    return b"\n".join(out) + b"\n"


def _stratum_reply(msg):
    """What a stratum v1 pool answers (subscribe, authorize, then a job; submits accepted)."""
    method, ident = msg.get("method"), msg.get("id")
    if method == "mining.subscribe":
        return [{"id": ident, "result": [[["mining.notify", "ae6812eb4cd7735a"]], "08000002", 4],
                 "error": None}]
    if method == "mining.authorize":
        job = ["b3ba", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",
               "01000000010000000000000000000000", "ffffffff", [], "00000002", "1c2ac4af",
               "504e86b9", True]
        return [{"id": ident, "result": True, "error": None},
                {"id": None, "method": "mining.set_difficulty", "params": [1]},
                {"id": None, "method": "mining.notify", "params": job}]
    if method == "mining.submit":
        return [{"id": ident, "result": True, "error": None}]
    return [{"id": ident, "result": None, "error": [20, "unknown method", None]}]

