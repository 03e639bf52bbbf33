"""The ``worthwhile`` upload policy: an intermediate output is uploaded only when recomputing
it would cost more than moving it; the final output always is. Checked against the seed's
policy (``all``) on the same worlds: only uploads differ, each as the one rule says."""

from __future__ import annotations

from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from modelcache.planner import (
    Download,
    Run,
    Skip,
    Step,
    Upload,
    make_plan,
    make_sweep_plan,
    upload_verdict,
)

from .strategies import SweepWorld, World, sweep_worlds, worlds

seconds = st.floats(0, 1e5, allow_nan=False)
sizes = st.integers(0, 10**12)
bandwidths = st.floats(1.0, 1e10, allow_nan=False)


@given(seconds, seconds, sizes, bandwidths)
def test_a_costlier_recomputation_is_never_less_worth_uploading(
    low: float, high: float, size: int, bandwidth: float
) -> None:
    low, high = sorted((low, high))
    if upload_verdict(recompute_seconds=low, size=size, bandwidth=bandwidth).upload:
        assert upload_verdict(recompute_seconds=high, size=size, bandwidth=bandwidth).upload


@given(seconds, sizes, sizes, bandwidths)
def test_a_bigger_output_is_never_more_worth_uploading(
    recompute: float, small: int, big: int, bandwidth: float
) -> None:
    small, big = sorted((small, big))
    if upload_verdict(recompute_seconds=recompute, size=big, bandwidth=bandwidth).upload:
        assert upload_verdict(recompute_seconds=recompute, size=small, bandwidth=bandwidth).upload


@given(st.none() | seconds, st.none() | sizes, st.none() | bandwidths)
def test_without_every_figure_it_is_uploaded_as_the_seed_does(
    recompute: float | None, size: int | None, bandwidth: float | None
) -> None:
    verdict = upload_verdict(recompute_seconds=recompute, size=size, bandwidth=bandwidth)
    if None in (recompute, size, bandwidth):
        assert verdict.upload
        assert "not recorded" in verdict.reason or "no bandwidth" in verdict.reason
    else:
        assert recompute is not None
        assert size is not None
        assert bandwidth is not None
        assert verdict.upload == (recompute > size / bandwidth)
        assert verdict.reason.startswith("uploaded: " if verdict.upload else "not uploaded: ")


def test_the_verdict_gives_its_figures() -> None:
    verdict = upload_verdict(recompute_seconds=2.0, size=90_000_000, bandwidth=12_500_000)
    assert verdict == type(verdict)(
        False, "not uploaded: recomputing it takes 2 s, moving 90 MB 7.2 s at 12.5 MB/s"
    )


@given(worlds(min_passes=1))
def test_only_uploads_differ_from_the_seeds_policy_each_as_the_rule_says(world: World) -> None:
    seed = make_plan(world.chain, world.evaluation, world.snapshot, world.policy)
    judged_policy = evolve(world.policy, upload_policy="worthwhile")
    judged = make_plan(world.chain, world.evaluation, world.snapshot, judged_policy)
    final = world.keys[-1]

    def without_uploads(steps: list) -> list:
        return [(type(s), s.key) for s in steps if not isinstance(s, Upload)]

    assert without_uploads(list(judged.steps)) == without_uploads(list(seed.steps))
    uploads = {step.key: step for step in judged.steps if isinstance(step, Upload)}
    primaries = {s.key: s for s in judged.steps if isinstance(s, Run | Skip | Download)}
    for step in seed.steps:
        if not isinstance(step, Upload):
            continue
        kept = uploads.get(step.key)
        entry = world.snapshot.get(step.key)
        if step.key == final:
            assert kept == step  # the final output: always, as the seed
        elif isinstance(primaries[step.key], Run):  # judged once it has run
            assert kept is not None
            assert kept.if_worthwhile
        else:  # in the local tier only: judged now, on its recorded figures
            assert entry is not None
            verdict = upload_verdict(recompute_seconds=entry.run_seconds, size=entry.size,
                                     bandwidth=world.policy.bandwidth)  # fmt: skip
            assert (kept is not None) == verdict.upload
            assert kept is None or not kept.if_worthwhile
            if kept is None:
                assert isinstance(primaries[step.key], Skip)
                assert primaries[step.key].reason.endswith(verdict.reason)
    assert set(uploads) <= {step.key for step in seed.steps if isinstance(step, Upload)}


@given(sweep_worlds())
def test_in_a_sweep_only_the_uploads_of_intermediates_are_judged(world: SweepWorld) -> None:
    policy = evolve(world.policy, upload_policy="worthwhile")
    seed = make_sweep_plan(world.sweep, world.snapshot, world.policy)
    plan = make_sweep_plan(world.sweep, world.snapshot, policy)
    finals = {path.keys[-1] for path in plan.workflows if path.keys}

    def primaries(steps: list[Step]) -> list[tuple[type, str]]:
        return [(type(step), step.key) for step in steps if not isinstance(step, Upload)]

    assert primaries(list(plan.steps)) == primaries(list(seed.steps))
    judged = {step.key for step in plan.steps if isinstance(step, Upload) and step.if_worthwhile}
    assert not judged & finals
    ran = {step.key for step in plan.steps if isinstance(step, Run)}
    if policy.uploads:
        assert judged == {key for key in ran - finals if not _in_cloud(world, key)}


def _in_cloud(world: SweepWorld, key: str) -> bool:
    entry = world.snapshot.get(key)
    return entry is not None and entry.in_cloud
