"""A missing system dependency (SLURM, chromium, LaTeX): a skip on a workstation, a failure in CI.

scripts/install_system_deps.sh installs them; under CI=true (set by .ci/run) a test that cannot
run for want of one fails with the reason, so CI cannot go green on skipped integration tests.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_system_dependency(reason: str) -> NoReturn:
    """Skip the calling test with ``reason``, or fail it when the environment says CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and a system dependency is missing: {reason} (scripts/install_system_deps.sh)")
    pytest.skip(reason)
