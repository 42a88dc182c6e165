"""The jobs a target needs, as Snakemake's own dry run lists them, and the profile's limits per rule.

The plan never re-derives the DAG: it runs `snakemake --dry-run` with the same config and targets
and reads each job's rule, wildcards, inputs and outputs from it, so a new rule, benchmark or model
appears in the plan exactly when Snakemake would run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regionreasoner.io import InputError, read_yaml

RULE_LINE = re.compile(r"^(?:local)?(?:checkpoint|rule) (\S+):$")
FIELD_LINE = re.compile(r"^    (input|output|wildcards|resources|jobid): (.*)$")


@dataclass(frozen=True)
class Job:
    """One job of the dry run."""

    rule: str
    jobid: int
    wildcards: dict[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    resources: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The rule and its wildcard values, as a plan row names the job."""
        values = ",".join(self.wildcards.values())
        return f"{self.rule}[{values}]" if values else self.rule


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def parse_dry_run(text: str) -> list[Job]:
    """Jobs from the text of `snakemake --dry-run` (one block per job, `rule NAME:` then fields)."""
    jobs: list[Job] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if match := RULE_LINE.match(line):
            if current is not None:
                jobs.append(_job(current))
            current = {"rule": match.group(1)}
        elif current is not None and (match := FIELD_LINE.match(line)):
            current[match.group(1)] = match.group(2)
        elif current is not None and line and not line.startswith(" "):
            jobs.append(_job(current))
            current = None
    if current is not None:
        jobs.append(_job(current))
    return jobs


def _job(block: dict[str, Any]) -> Job:
    if "jobid" not in block:
        raise ValueError(f"snakemake dry run: job of rule {block['rule']} has no jobid line")
    return Job(
        rule=block["rule"],
        jobid=int(block["jobid"]),
        wildcards=_pairs(block.get("wildcards", "")),
        inputs=tuple(block["input"].split(", ")) if block.get("input") else (),
        outputs=tuple(block["output"].split(", ")) if block.get("output") else (),
        resources=_pairs(block.get("resources", "")),
    )


def dry_run(
    configfile: Path, targets: list[str], from_scratch: bool = False, snakefile: Path = Path("Snakefile")
) -> list[Job]:
    """The jobs Snakemake would run for ``targets`` (none: the default target) under ``configfile``.

    ``from_scratch``: every job the targets need, also those whose outputs exist (``--forceall``).
    """
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--dry-run",
        "--nolock",
        "--snakefile",
        str(snakefile),
        "--configfile",
        str(configfile),
        "--cores",
        "1",
        *(["--forceall"] if from_scratch else []),
        "--",
        *targets,
    ]
    # a user's global profile (SNAKEMAKE_PROFILE) could pick an executor or reformat the dry run
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise ValueError(f"snakemake --dry-run for {configfile} failed:\n{done.stderr.strip()[-2000:]}")
    return parse_dry_run(done.stdout + "\n" + done.stderr)


def dependencies(jobs: list[Job]) -> dict[int, set[int]]:
    """For each job, the jobs whose outputs it reads."""
    producer = {path: job.jobid for job in jobs for path in job.outputs}
    return {job.jobid: {producer[p] for p in job.inputs if p in producer} - {job.jobid} for job in jobs}


@dataclass(frozen=True)
class Limits:
    """What the profile grants a rule's job: GPUs, memory (MB) and time (minutes) of the first attempt."""

    gpus: int | None
    mem_mb: float | None
    runtime_min: float | None
    retries: int


def _evaluate(value: Any, attempt: int) -> float:
    """A profile resource: a number, or an expression of `attempt` as Snakemake evaluates it."""
    if isinstance(value, int | float):
        return float(value)
    return float(eval(str(value), {"__builtins__": {}}, {"attempt": attempt}))  # noqa: S307 (Snakemake's own rule)


class Profile:
    """A Snakemake workflow profile's resources (default-resources, set-resources)."""

    def __init__(self, path: Path) -> None:
        file = path / "config.yaml" if path.is_dir() else path
        raw = read_yaml(file) or {}
        if not isinstance(raw, dict):
            raise InputError(
                f"{file}: holds a YAML {type(raw).__name__}, expected a Snakemake profile mapping; check --profile"
            )
        self.path = file
        self.defaults: dict[str, Any] = raw.get("default-resources") or {}
        self.rules: dict[str, dict[str, Any]] = raw.get("set-resources") or {}
        self.retries = int(raw.get("retries", 0))

    def limits(self, rule: str, attempt: int = 1) -> Limits:
        merged = {**self.defaults, **self.rules.get(rule, {})}
        get = {key: _evaluate(merged[key], attempt) if key in merged else None for key in ("gpu", "mem_mb", "runtime")}
        return Limits(
            gpus=int(get["gpu"]) if get["gpu"] is not None else None,
            mem_mb=get["mem_mb"],
            runtime_min=get["runtime"],
            retries=self.retries,
        )
