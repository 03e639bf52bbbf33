from modelcache.planner import (
    Chain,
    Evaluation,
    HubModel,
    PassSpec,
    Plan,
    Snapshot,
    SnapshotEntry,
    chain_keys,
    dumps,
    loads,
    make_plan,
)


def test_cached_intermediate_is_skipped_when_the_next_pass_is_cached() -> None:
    chain = Chain(
        model=HubModel(repo_id="org/model", revision="0" * 40),
        passes=[
            PassSpec(name="convert", type="OnnxConversion", version="1"),
            PassSpec(name="quantize", type="OnnxDynamicQuantization", version="1"),
        ],
    )
    keys = chain_keys(chain)
    snapshot = Snapshot.from_listing(
        [SnapshotEntry(key=key, in_cloud=True, size=10) for key in keys]
    )
    plan = make_plan(chain, Evaluation.nothing(), snapshot)
    assert [type(step).__name__ for step in plan.steps] == ["Skip", "Download"]
    assert plan.totals.bytes_to_download == 10
    assert loads(dumps(plan), Plan) == plan
