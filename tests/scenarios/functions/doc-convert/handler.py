"""Document archiver: fetches an uploaded document (here: generated from its key), compresses it
with gzip at the requested level and returns the compressed size and the digest.

Vulnerable on purpose: `level` is pasted into a shell command line unchecked, so a request can
append its own commands (command injection)."""

import hashlib
import json
import os
import subprocess

INBOX = "/tmp/inbox"


def fetch(key, size):
    """Writes the document's bytes to the inbox, as a download from the bucket would."""
    os.makedirs(INBOX, exist_ok=True)
    path = os.path.join(INBOX, hashlib.sha1(key.encode()).hexdigest() + ".bin")
    seed = hashlib.sha256(key.encode()).digest()
    with open(path, "wb") as out:
        block = (seed * 64)[:2048]
        for offset in range(0, size, 2048):
            out.write(block[: min(2048, size - offset)])
    return path


def handler(event, context):
    key = event["key"]
    level = event.get("level", "6")
    path = fetch(key, int(event.get("size", 4096)))
    command = f"gzip -{level} -c {path} | wc -c && sha256sum {path}"
    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=20)
    finally:
        os.remove(path)
    lines = done.stdout.splitlines()
    print(json.dumps({"msg": "archived", "key": key, "exit": done.returncode}))
    return {"key": key, "exit": done.returncode, "compressed_bytes": lines[0] if lines else None,
            "output": done.stdout[-4096:], "stderr": done.stderr[-1024:]}
