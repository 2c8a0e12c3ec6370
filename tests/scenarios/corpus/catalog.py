"""The functions of the corpus: how the sandbox runs each one."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Function:
    name: str
    runtime: str  # "python" (tests/scenarios/functions/<name>/handler.py) or "provided"
    memory_mb: int
    timeout_s: int
    vulnerable: bool
    summary: str
    # For "provided": the workspace binary that becomes the function's bootstrap.
    bootstrap: str = ""
    # Function configuration; values are formatted with the host service ports.
    env: dict = field(default_factory=dict)


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
             "Rust: hashes uploaded chunks, spools big ones to /tmp", bootstrap="rust-probe"),
    Function("metrics-shipper", "provided", 128, 5, False,
             "Rust: ships metric batches to a collector over TCP", bootstrap="rust-probe"),
    Function("doc-convert", "python", 256, 20, True,
             "compresses documents with a shell pipeline (command injection)"),
    Function("session-api", "python", 256, 8, True,
             "restores sessions from a pickled cookie (insecure deserialisation)"),
    Function("pricing-rules", "python", 128, 3, True,
             "evaluates price expressions with eval (code injection)"),
    Function("customer-export", "python", 512, 10, True,
             "pages through customer records; limit not capped (bulk export)"),
)}

# Benign functions held out of training by default (see README: train/test separation).
HOLDOUT = ("report-builder", "metrics-shipper")

ATTACK_CLASSES = (
    "command_injection", "reverse_shell", "crypto_mining", "egress_exfiltration",
    "response_exfiltration", "credential_theft", "dropper", "persistence",
    "denial_of_wallet", "probing",
)

# Which vulnerable function each attack goes through.
TARGET = {
    "command_injection": "doc-convert",
    "dropper": "doc-convert",
    "persistence": "doc-convert",
    "reverse_shell": "session-api",
    "credential_theft": "session-api",
    "egress_exfiltration": "session-api",
    "crypto_mining": "pricing-rules",
    "denial_of_wallet": "pricing-rules",
    "probing": "pricing-rules",
    "response_exfiltration": "customer-export",
}
