"""Hypothesis profiles. Under CI (``CI`` set, as ``.ci/run`` does) every property test is
derandomized: the same examples on every run, so the suite's verdict does not depend on luck.
Locally the default profile explores new examples each run (a failure there is a real bug: the
properties hold for every input); ``HYPOTHESIS_PROFILE=ci`` reproduces CI."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev")
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
