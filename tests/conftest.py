"""Shared fixtures. The whole-DAG run on config/test.yaml is built once per session and shared by
the end-to-end tests (pipeline, resume, DVC), because it is the slowest thing the suite does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# what a copy of the workflow needs (src is installed editable and read from the repo)
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs", "paper", "src/regionreasoner/data/manifest.yaml")


def run(cmd: list[str], cwd: Path, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with the venv's tools first on PATH; fail with its output on error."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def copy_workflow(dest: Path) -> Path:
    """A copy of the workflow (not of results) in which Snakemake can run undisturbed."""
    for name in WORKFLOW_FILES:
        src = REPO / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            shutil.copy2(src, target)
    return dest


def snakemake(workdir: Path, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(VENV_BIN / "snakemake"), "--cores", "2", *args], workdir, timeout=timeout, check=check)


def test_config(workdir: Path, **overrides) -> dict:
    """config/test.yaml of a workflow copy, with top-level sections updated by ``overrides``."""
    raw = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    for key, value in overrides.items():
        if isinstance(value, dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


@pytest.fixture(scope="session")
def built_pipeline(tmp_path_factory) -> Path:
    """A workflow copy with the reduced DAG (config/test.yaml) built to completion."""
    workdir = copy_workflow(tmp_path_factory.mktemp("pipeline"))
    snakemake(workdir, "--configfile", "config/test.yaml")
    return workdir


@dataclass
class ScriptedGenerator:
    """A stand-in for the evaluator's generator: answers from a script keyed by the question asked
    (fixed earlier predictions), and records every question."""

    script: dict[str, str]
    frame: int = 100
    asked: list[str] = field(default_factory=list)

    def answer(self, image_paths, questions, progress=None):
        self.asked += list(questions)
        if progress is not None:
            progress.update(len(questions))
        return [self.script.get(q, "no idea") for q in questions]


def assert_tag_content(text: str, tag: str) -> None:
    """``extract_tag(text, tag)`` is the stripped text between the first ``<tag>`` and the first
    ``</tag>`` after it, or None exactly when no ``</tag>`` follows the first ``<tag>``."""
    from regionreasoner.rewards.parsing import extract_tag

    content = extract_tag(text, tag)
    opening, closing = f"<{tag}>", f"</{tag}>"
    first = text.find(opening)
    after = text[first + len(opening) :] if first >= 0 else ""
    if content is None:
        assert first < 0 or closing not in after, (tag, text[:200])
        return
    assert first >= 0 and content == content.strip() and closing not in content, (tag, content[:200])
    body = after.lstrip()
    assert body.startswith(content) and body[len(content) :].lstrip().startswith(closing), (tag, content[:200])
