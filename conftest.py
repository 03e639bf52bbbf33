"""Suite-wide settings: Hypothesis profiles, chosen by MODELCACHE_HYPOTHESIS_PROFILE.

``ci`` (the default) keeps the whole suite within minutes on two cores; ``thorough`` runs
many more examples, for a developer who has the time.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("MODELCACHE_HYPOTHESIS_PROFILE", "ci"))
