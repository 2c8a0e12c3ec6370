"""Turns a seed and a scale into the list of sandbox runs: benign streams per function (split
into several runs, so there are cold starts) and attack campaigns (benign traffic of the
vulnerable function with attacks mixed in). Same seed and ports: same events, same order."""

import random
from dataclasses import dataclass, field

from .attacks import GENERATORS
from .catalog import ATTACK_CLASSES, FUNCTIONS, HOLDOUT, NEW_HABIT, TARGETS
from .workloads import BENIGN, lognormal


@dataclass(frozen=True)
class Scale:
    benign: int  # invocations per benign function
    vulnerable_benign: int  # benign-only invocations per vulnerable function
    run_median: int  # median invocations per sandbox run (environment)
    campaigns: int  # campaigns per attack class
    attacks: tuple  # (min, max) attacks per campaign
    warmup: tuple  # (min, max) benign invocations before the first attack
    burst: tuple  # (min, max) probes per probing burst
    pauses: tuple  # frozen gaps between invocations to pick from, ms


SCALES = {
    "small": Scale(6, 4, 3, 1, (2, 2), (2, 3), (5, 6), (0, 5, 20)),
    "medium": Scale(60, 30, 15, 3, (2, 4), (5, 15), (6, 12), (0, 10, 50)),
    "full": Scale(400, 200, 40, 10, (3, 6), (30, 80), (8, 25), (0, 10, 25, 100)),
}


@dataclass
class Invocation:
    event: object
    label: str  # "benign" or an attack class
    variant: str = None
    stage: str = None  # attacks: "attack", or "residual" for what persistence leaves running
    expect: dict = field(default_factory=dict)


@dataclass
class Run:
    function: str
    scenario: str  # "benign" or "attack/<class>"
    number: int
    pause_ms: int
    invocations: list

    @property
    def name(self):
        return f"{self.scenario}/{self.function}/{self.number}"


def _rng(seed, *parts):
    return random.Random(":".join([str(seed), *parts]))


def _split_runs(rng, count, median):
    sizes = []
    while count > 0:
        size = min(count, lognormal(rng, median, 0.5, 1, median * 4))
        sizes.append(size)
        count -= size
    return sizes


def benign_runs(name, seed, scale, ports):
    rng = _rng(seed, "benign", name)
    total = scale.vulnerable_benign if FUNCTIONS[name].vulnerable else scale.benign
    # A scheduled job runs rarely, so most of its invocations find no warm environment.
    median = 2 if name == "nightly-batch" else scale.run_median
    runs = []
    for number, size in enumerate(_split_runs(rng, total, median)):
        events = [Invocation(BENIGN[name](rng, ports), "benign") for _ in range(size)]
        runs.append(Run(name, "benign", number, rng.choice(scale.pauses), events))
    return runs


def _attack(rng, kind, target, ports, scale_name):
    event, variant, expect = GENERATORS[kind, target](rng, ports, scale_name)
    return Invocation(event, kind, variant, "attack", expect)


def campaign(kind, target, number, seed, scale, scale_name, ports):
    """Benign warm-up, then attacks (a burst, for probing) with benign traffic between them."""
    rng = _rng(seed, "attack", kind, target, str(number))
    benign = BENIGN[target]
    warmup = rng.randint(*scale.warmup)
    if kind == "persistence":
        warmup = max(1, warmup // 3)  # its runs have long gaps and there are more of them
    if scale_name == "full" and rng.random() < 0.125:
        warmup = 0  # some attacks land on a fresh environment
    out = [Invocation(benign(rng, ports), "benign") for _ in range(warmup)]
    bursts = 1 if kind == "probing" else rng.randint(*scale.attacks)
    for n in range(bursts):
        if kind == "probing":
            out += [_attack(rng, kind, target, ports, scale_name)
                    for _ in range(rng.randint(*scale.burst))]
        else:
            out.append(_attack(rng, kind, target, ports, scale_name))
        if kind == "persistence":
            # What the planted process does during the next warm invocations is its doing too.
            for _ in range(3):
                out.append(Invocation(benign(rng, ports), kind, out[-1].variant, "residual"))
            break
        if n + 1 < bursts:
            out += [Invocation(benign(rng, ports), "benign") for _ in range(rng.randint(1, 3))]
    if kind != "persistence":
        out += [Invocation(benign(rng, ports), "benign") for _ in range(rng.randint(1, 2))]
    # Gaps longer than the beacon period: each thaw wakes the planted process.
    pause = 400 if kind == "persistence" else rng.choice(scale.pauses)
    return Run(target, f"attack/{kind}", number, pause, out)


def campaigns_per_target(kind, scale):
    """A class's campaigns are shared among its targets (at least one each), so that adding a
    target does not multiply the class's share of the corpus."""
    campaigns = scale.campaigns
    if kind == "persistence":
        # One plant per campaign: run more of them to match the other classes' counts.
        campaigns *= max(1, sum(scale.attacks) // 2)
    return max(1, -(-campaigns // len(TARGETS[kind])))


def build(seed, scale_name, ports, split="train", holdout=HOLDOUT, only=()):
    """Every run of the corpus, in order. `split=train` leaves the held-out functions out:
    their benign runs and the campaigns that go through them."""
    scale = SCALES[scale_name]
    runs = []
    for name in FUNCTIONS:
        if split == "train" and name in holdout:
            continue
        runs += benign_runs(name, seed, scale, ports)
    for kind in ATTACK_CLASSES:
        for target in TARGETS[kind]:
            if split == "train" and target in holdout:
                continue
            for number in range(campaigns_per_target(kind, scale)):
                runs.append(campaign(kind, target, number, seed, scale, scale_name, ports))
    if only:
        runs = [r for r in runs if _selected(r, only)]
    return runs


def _selected(run, only):
    kind = run.scenario.split("/", 1)[-1]
    habit = ("new-habit",) if run.function in NEW_HABIT else ()
    return any(o in (run.function, kind, run.scenario.split("/")[0], *habit) for o in only)
