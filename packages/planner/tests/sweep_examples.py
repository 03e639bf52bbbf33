"""Hand-made sweeps: worlds that random sweeps seldom hit, and a base workflow's variants."""

from __future__ import annotations

from attrs import evolve

from modelcache.planner import (
    CachePolicy,
    Chain,
    Evaluation,
    HubModel,
    PassSpec,
    SnapshotEntry,
    Sweep,
    Workflow,
    chain_keys,
)

from .strategies import FINGERPRINT, OTHER_FINGERPRINT, SweepWorld

MODEL = HubModel(repo_id="org/model", revision="main")
CONVERT = PassSpec(name="convert", type="OnnxConversion", version="1")
LEFT = Workflow(
    name="left",
    chain=Chain(model=MODEL, passes=[CONVERT, PassSpec(name="q", type="Prune", version="1")]),
)
RIGHT = Workflow(
    name="right",
    chain=Chain(model=MODEL, passes=[CONVERT, PassSpec(name="f", type="Fp16", version="1")]),
)
INPUT_KEY, LEFT_KEY = chain_keys(LEFT.chain)
RIGHT_KEY = chain_keys(RIGHT.chain)[1]

# Running the shared pass (5 s) would let one variant run instead of downloading (1 s), but
# both variants must be downloaded anyway (1 s and 10 s): a planner that counted the shared
# output's cost against one child only would run it.
CHEAPER_TO_DOWNLOAD_BOTH = SweepWorld(
    sweep=Sweep(workflows=[LEFT, RIGHT]),
    listing=(
        SnapshotEntry(key=INPUT_KEY, run_seconds=5.0),
        SnapshotEntry(key=LEFT_KEY, in_cloud=True, size=1, run_seconds=1.0),
        SnapshotEntry(key=RIGHT_KEY, in_cloud=True, size=10),
    ),
    policy=CachePolicy(bandwidth=1.0),
)

# Both variants want the shared output evaluated, each by its own evaluator; one result is
# cached, the other is not, so the output must be downloaded for the other.
ONE_EVALUATOR_CACHED = SweepWorld(
    sweep=Sweep(
        workflows=[
            evolve(LEFT, evaluation=Evaluation.of(["convert"], FINGERPRINT)),
            evolve(RIGHT, evaluation=Evaluation.of(["convert"], OTHER_FINGERPRINT)),
        ]
    ),
    listing=(
        SnapshotEntry(key=INPUT_KEY, in_cloud=True, evaluations=[FINGERPRINT]),
        SnapshotEntry(key=LEFT_KEY, in_local=True),
        SnapshotEntry(key=RIGHT_KEY, in_local=True),
    ),
    policy=CachePolicy(),
)

# The shared output is downloaded in the first segment, and both variants run on it: they
# must wait for the download, whatever order the scheduler would like.
DOWNLOADED_FOR_TWO = SweepWorld(
    sweep=Sweep(workflows=[LEFT, RIGHT]),
    listing=(SnapshotEntry(key=INPUT_KEY, in_cloud=True),),
    policy=CachePolicy(),
)


# A base workflow under four quantization settings, sharing its conversion.


def variant(name: str, weight_type: str, *, pass_name: str = "quantize") -> Workflow:
    quantize = PassSpec(
        name=pass_name, type="OnnxQuantization", version="1", config={"weight_type": weight_type}
    )
    return Workflow(
        name=name,
        chain=Chain(model=MODEL, passes=[CONVERT, quantize]),
        evaluation=Evaluation.final("latency-v1"),
    )


FOUR = Sweep(workflows=[variant(f"v{i}", kind) for i, kind in enumerate("ABCD")])
(CONVERT_KEY,) = {chain_keys(workflow.chain)[0] for workflow in FOUR.workflows}
