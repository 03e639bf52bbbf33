"""The stores under test: :class:`Subject`, a store with raw access to its objects, and the
subjects of the stores every installation has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from attrs import frozen

from .._layered import LayeredStore
from .._local import LocalStore
from .._memory import MemoryStore
from .._port import Store, Tier

__all__ = ["Subject", "SubjectFactory", "local_subject", "memory_subject"]


def _nothing() -> None:
    return None


@frozen(kw_only=True)
class Subject:
    """A store under test, and raw access to its objects by layout name.

    :param store: the store, empty.
    :param get_object: ``get_object(name)``: the bytes stored under the layout name
        ``name`` (``modelcache-v1/blobs/sha256/ab/ab12...``), or None; bypasses every check.
    :param put_object: ``put_object(name, data)``: store ``data`` under ``name``, replacing
        what is there, unchecked (to damage a blob, or plant a hostile manifest). It must
        give the object a new version, as any write does.
    :param close: release what the store holds (connections, a container); called once.
    :param tiers: for a store made of others (:meth:`layered`), their subjects, local first.

    A subject is made by a :data:`SubjectFactory` for one run of the machine or one test.
    """

    store: Store
    get_object: Callable[[str], bytes | None]
    put_object: Callable[[str, bytes], None]
    close: Callable[[], None] = _nothing
    tiers: tuple[Subject, ...] = ()

    @classmethod
    def layered(
        cls, local: Subject, cloud: Subject | None = None, *, write_through: bool = False
    ) -> Subject:
        """A :class:`~modelcache.store.LayeredStore` of ``local`` in front of ``cloud``.

        Its ``get_object`` reads the first tier that has the object and its ``put_object``
        writes into every tier, so that a planted manifest cannot be dodged by falling
        through to a clean tier. ``close`` closes both tiers.
        """
        tiers = (local,) if cloud is None else (local, cloud)
        names = [tier.store.tier for tier in tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"the tiers of a layered store must differ, not {names}")
        store = LayeredStore(
            local.store, None if cloud is None else cloud.store, write_through=write_through
        )

        def get_object(name: str) -> bytes | None:
            found = (tier.get_object(name) for tier in tiers)
            return next((data for data in found if data is not None), None)

        def put_object(name: str, data: bytes) -> None:
            for tier in tiers:
                tier.put_object(name, data)

        def close() -> None:
            for tier in tiers:
                tier.close()

        return cls(
            store=store, get_object=get_object, put_object=put_object, close=close, tiers=tiers
        )


#: Makes an empty store under test, given a fresh scratch directory it may use.
SubjectFactory = Callable[[Path], Subject]


def memory_subject(_scratch: Path, *, tier: Tier = "cloud") -> Subject:
    """A :class:`~modelcache.store.MemoryStore` (the reference store) as a subject."""
    store = MemoryStore(tier=tier)
    return Subject(store=store, get_object=store.get_object, put_object=store.put_object)


def local_subject(scratch: Path, *, tier: Tier = "local") -> Subject:
    """A :class:`~modelcache.store.LocalStore` in ``scratch/store`` as a subject."""
    root = scratch / "store"

    def get_object(name: str) -> bytes | None:
        path = root / name
        return path.read_bytes() if path.is_file() else None

    def put_object(name: str, data: bytes) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(data)

    return Subject(store=LocalStore(root, tier), get_object=get_object, put_object=put_object)
