"""The contract every store must pass: a state machine checked against a model, and hostile
manifests.

Needs the ``[testing]`` extra (``pip install modelcache-store[testing]``: Hypothesis and
pytest). To check a store of your own, describe it as a :class:`Subject` (the store, and raw
access to its objects by layout name, bypassing every check) and subclass
:class:`StoreContract` in a test module, giving it a ``make_subject`` fixture::

    import pytest
    from modelcache.store.testing import StoreContract, Subject

    from mystore import SqlStore


    class TestSqlStore(StoreContract):
        @pytest.fixture
        def make_subject(self, database):
            def make(scratch):
                store = SqlStore(database.url)
                return Subject(
                    store=store,
                    get_object=store.raw_get,   # bytes, or None if absent
                    put_object=store.raw_put,   # replace unconditionally, unchecked
                    close=store.close,
                )

            return make

``make(scratch)`` is called once per run of the machine and once per hostile-manifest test,
with a fresh, empty scratch directory, and must return an empty store of its own. From a
plain test function or a script, :func:`run_contract` runs the state machine alone:
``run_contract(make)`` returns nothing, or raises the first disagreement Hypothesis found
(shrunk to a short story of operations).

What it checks
--------------
:class:`StoreMachine` (``_machine.py``) runs random operations (publish, fetch, snapshot,
evaluation results, damage behind the store's back, a repair followed by a publish, and the
maintenance of every :class:`~modelcache.store.MaintainedStore` tier) and checks every
answer against a model of what the store holds (:class:`TierModel` and, for a
:class:`~modelcache.store.LayeredStore`, :class:`LayeredModel`: ``_model.py``, with the
theory of operation). :class:`StoreContract` (``_contract.py``) adds hostile manifests
planted straight into the store (``_hostile.py``: unsafe paths, malformed documents, wrong
sizes, fuzzed ones), which must be refused without a byte written outside the destination,
and the transfer progress every store reports.
"""

from ._contract import StoreContract, run_contract
from ._hostile import hostile_manifests
from ._machine import StoreMachine
from ._model import LayeredModel, TierModel
from ._subjects import Subject, SubjectFactory, local_subject, memory_subject

__all__ = [
    "LayeredModel",
    "StoreContract",
    "StoreMachine",
    "Subject",
    "SubjectFactory",
    "TierModel",
    "hostile_manifests",
    "local_subject",
    "memory_subject",
    "run_contract",
]
