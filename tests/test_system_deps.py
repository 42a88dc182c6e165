"""scripts/install_system_deps.sh: a system dependency it cannot install fails CI, naming it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "install_system_deps.sh"


def run_without_system_tools(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """The script on a PATH holding `id` alone: nothing installed, and no apt-get to install it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").symlink_to(shutil.which("id"))
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("dependency", ["slurmctld", "chromium", "latexmk"])
def test_missing_dependency_fails_ci_naming_it(tmp_path, dependency):
    proc = run_without_system_tools(tmp_path, CI="true")
    assert proc.returncode == 1
    assert dependency in proc.stderr and "CI=true" in proc.stderr


def test_missing_dependency_outside_ci_is_reported_not_fatal(tmp_path):
    proc = run_without_system_tools(tmp_path)
    assert proc.returncode == 0
    assert "latexmk" in proc.stdout and "will skip" in proc.stdout
