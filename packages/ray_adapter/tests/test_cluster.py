"""Starting or joining a cluster, without one: an address nobody answers at refused in one
line, at once; a cluster asking for a token said so; the command's signal handlers kept."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from modelcache.ray import RayUnavailable, _cluster


def test_an_address_nobody_answers_at_is_refused_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nobody listens once this closes
    began = time.monotonic()
    with pytest.raises(RayUnavailable) as caught:
        _cluster._answers(f"127.0.0.1:{port}")
    assert time.monotonic() - began < 5
    assert str(caught.value).startswith(f"no Ray cluster answers at 127.0.0.1:{port} (")
    assert f"`ray start --head --port {port}`" in str(caught.value)
    assert caught.value.fault == "environment"
    for left_to_ray in ("auto", "ray://head:10001", "local"):
        _cluster._answers(left_to_ray)


def test_an_address_that_answers_is_left_to_ray() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        _cluster._answers(f"127.0.0.1:{server.getsockname()[1]}")


def test_the_commands_signal_handlers_outlive_rays() -> None:
    def commands(number: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, commands)
    try:
        with _cluster._signals_kept():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as ray.init puts its own
        assert signal.getsignal(signal.SIGTERM) is commands
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_cluster_asking_for_a_token_is_said_so_in_one_line() -> None:
    said = b"[...] gcs_client.cc:210: Failed to get cluster ID: InvalidAuthToken: missing\n" * 3
    error = ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379\nmore")
    assert _cluster._not_joined("10.0.0.1:6379", error, said) == (
        "cannot join the Ray cluster at 10.0.0.1:6379: Failed to connect to Ray cluster at "
        "10.0.0.1:6379; it asks for a token: set RAY_AUTH_MODE=token, and RAY_AUTH_TOKEN (or "
        "~/.ray/auth_token) to its token (`ray get-auth-token` on its head)"
    )
    assert _cluster._not_joined("h:1", error, b"").endswith(
        "Failed to connect to Ray cluster at 10.0.0.1:6379"
    )
