"""The functions of the corpus: how the sandbox runs each one."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Function:
    name: str
    runtime: str  # the sandbox's --runtime: "python" (handler.py) or "provided" (a bootstrap)
    memory_mb: int
    timeout_s: int
    vulnerable: bool
    summary: str
    # For "provided": the workspace binary that becomes the function's bootstrap; empty when
    # tests/scenarios/functions/<name>/ holds its own `bootstrap` (a custom runtime).
    bootstrap: str = ""
    # Function configuration; values are formatted with the host service ports.
    env: dict = field(default_factory=dict)
    # What the code is written in (the runtime kind does not say: "provided" is Rust, bash or
    # Node.js here). Carried on every corpus line.
    language: str = "python"
    # A runtime or a per-invocation habit that no older function of the corpus has (a runtime
    # loop forking curl and jq, a Node.js event loop, a shell pipeline on every call): a
    # detector evaluated on these has not seen their kind in training unless they were in it.
    new_habit: bool = False


FUNCTIONS = {f.name: f for f in (
    Function("thumbnailer", "python", 512, 10, False,
             "scales images down; CPU and memory grow with the image"),
    Function("orders-api", "python", 128, 3, False,
             "validates and prices orders; 400s and the odd pricing error"),
    Function("webhook-forwarder", "python", 128, 6, False,
             "signs events and POSTs them to a partner endpoint, with retries",
             env={"WEBHOOK_URL": "http://host.sandbox:{hooks}/hooks"}),
    Function("nightly-batch", "python", 512, 30, False,
             "scheduled roll-up; spills to a /tmp scratch file and removes it"),
    Function("report-builder", "python", 256, 10, False,
             "renders reports and runs sort and gzip on them"),
    Function("checksum-service", "provided", 256, 5, False,
             "Rust: hashes uploaded chunks, spools big ones to /tmp", bootstrap="rust-probe",
             language="rust"),
    Function("metrics-shipper", "provided", 128, 5, False,
             "Rust: ships metric batches to a collector over TCP", bootstrap="rust-probe",
             language="rust"),
    Function("doc-convert", "python", 256, 20, True,
             "compresses documents with a shell pipeline (command injection)"),
    Function("session-api", "python", 256, 8, True,
             "restores sessions from a pickled cookie (insecure deserialisation)"),
    Function("pricing-rules", "python", 128, 3, True,
             "evaluates price expressions with eval (code injection)"),
    Function("customer-export", "python", 512, 10, True,
             "pages through customer records; limit not capped (bulk export)"),
    # Custom runtimes and shell-out habits (README: "New habits").
    Function("bash-runtime", "provided", 128, 10, True,
             "bash custom runtime summing order lines with jq; eval'd group_by (command injection)",
             language="bash", new_habit=True),
    Function("node-api", "provided", 256, 6, True,
             "Node.js orders API with its own runtime loop; templates via new Function (SSTI)",
             env={"ORDER_WEBHOOK_URL": "http://host.sandbox:{hooks}/orders"},
             language="node", new_habit=True),
    Function("pdf-convert", "python", 512, 30, True,
             "runs `curl URL | ./bin/converter -` in sh on every call; URL unquoted (injection)",
             new_habit=True),
)}

# Benign functions held out of training by default (see README: train/test separation).
HOLDOUT = ("report-builder", "metrics-shipper")
# The functions with habits no older function has: `--holdout new-habit` names them all.
NEW_HABIT = tuple(name for name, f in FUNCTIONS.items() if f.new_habit)

ATTACK_CLASSES = (
    "command_injection", "reverse_shell", "crypto_mining", "egress_exfiltration",
    "response_exfiltration", "credential_theft", "dropper", "persistence",
    "denial_of_wallet", "probing",
)

# Which vulnerable functions each attack goes through (corpus/attacks.py has a generator per
# pair). The first is the class's original target; in-process variants (code evaluated inside
# the runtime, no new process) come through pricing-rules and node-api.
TARGETS = {
    "command_injection": ("doc-convert", "bash-runtime", "pdf-convert"),
    "dropper": ("doc-convert", "bash-runtime"),
    "persistence": ("doc-convert", "pricing-rules", "node-api"),
    "reverse_shell": ("session-api", "bash-runtime", "pricing-rules", "node-api"),
    "credential_theft": ("session-api", "bash-runtime", "pdf-convert", "pricing-rules", "node-api"),
    "egress_exfiltration": ("session-api", "pricing-rules", "node-api"),
    "crypto_mining": ("pricing-rules", "node-api"),
    "denial_of_wallet": ("pricing-rules", "node-api"),
    "probing": ("pricing-rules", "node-api"),
    "response_exfiltration": ("customer-export", "node-api"),
}


def expand(names):
    """Function names, with `new-habit` standing for every new-habit function."""
    out = []
    for name in names:
        for item in (NEW_HABIT if name == "new-habit" else (name,)):
            if item not in out:
                out.append(item)
    return tuple(out)
