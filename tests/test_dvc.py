"""DVC versions what Snakemake builds: push, wipe, pull, and nothing upstream is rebuilt.

On a copy of the repository in a temporary directory (git init, dvc init, a local-directory remote),
with the reduced config (config/test.yaml) standing in for config/config.yaml and dvc.yaml written
from it by ``regionreasoner dvc-yaml``. The reduced DAG the session has built (``built_pipeline``)
is copied in and recorded with ``dvc commit`` (the cluster workflow: Snakemake executes, DVC
records), then pushed. DVC does not keep mtimes: after a pull, ``snakemake --touch`` restores their
order before anything is planned. Two DVC experiments (``dvc exp run --temp -S``) start from the
committed build. Wall time beyond the shared build: about 2 minutes on 2 idle cores, one GRPO
variant and what depends on it, plus about 40 s for the experiments.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from regionreasoner.config import grpo_model, validate_config
from tests.conftest import REPO, VENV_BIN, run

pytestmark = pytest.mark.slow

RESULTS = "results-test"  # `results` of config/test.yaml
TABLE = f"{RESULTS}/tables/table1_detection.md"
# Rules whose jobs must never be planned after a pull: they train or evaluate.
EXPENSIVE_RULES = ("build_model", "prepare_model", "sft", "grpo", "evaluate")
CHANGED_VARIANT = "full"
# The Snakefile is at the top level: Snakemake only finds ./profiles/default by itself.
SNAKEMAKE = [str(VENV_BIN / "snakemake"), "--workflow-profile", "workflow/profiles/default"]


def planned_rules(dry_run_output: str) -> set[str]:
    """Rule names in the job-stats table of ``snakemake -n``."""
    rules, in_table = set(), False
    for line in dry_run_output.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
        elif in_table and line.strip() and not line.startswith("-"):
            name = line.split()[0]
            if name == "total":
                in_table = False
            else:
                rules.add(name)
    return rules


def stages_run(repro_output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", repro_output))


def copy_worktree(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files: no results, caches or virtual environment."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if rel.startswith(".dvc/") or not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def repo(built_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built, committed and pushed copy of the repository running the reduced config."""
    root = tmp_path_factory.mktemp("dvc")
    work, remote = root / "repo", root / "remote"
    work.mkdir()
    copy_worktree(work)
    # The reduced config stands in for config/config.yaml, and dvc.yaml is written from it.
    shutil.copy(REPO / "config/test.yaml", work / "config/config.yaml")
    run(["regionreasoner", "dvc-yaml", "--configfile", "config/config.yaml"], work)
    run(["git", "init", "-q"], work)
    run(["dvc", "init", "-q"], work)
    run(["dvc", "remote", "add", "--local", "--default", "store", str(remote)], work)

    # What Snakemake built for the session (same config, same code), with its mtimes and metadata.
    shutil.copytree(built_pipeline / RESULTS, work / RESULTS, symlinks=True)
    shutil.copytree(built_pipeline / ".snakemake" / "metadata", work / ".snakemake" / "metadata")
    assert planned_rules(run([*SNAKEMAKE, "-n"], work).stdout) == set(), "the copied build is not complete"
    run(["dvc", "commit", "--force"], work)
    run(["dvc", "push"], work)
    return work


def test_pull_then_build_table_reruns_nothing_upstream(repo: Path) -> None:
    original = (repo / TABLE).read_bytes()
    # Another machine: no results, no DVC cache, no Snakemake metadata; only git and the remote.
    shutil.rmtree(repo / RESULTS)
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / ".snakemake", ignore_errors=True)
    run(["dvc", "pull"], repo)
    assert (repo / RESULTS / "models" / f"grpo-{CHANGED_VARIANT}").is_dir()

    # Pulled files carry fresh mtimes in no particular order, so upstream inputs can look newer than
    # what was built from them. DVC has just verified that outputs, code and params agree
    # (`dvc status`), which makes it safe to let Snakemake touch the outputs in DAG order.
    assert "up to date" in run(["dvc", "status"], repo).stdout
    run([*SNAKEMAKE, "--touch", "-c", "1"], repo)
    plan = run([*SNAKEMAKE, "-n", TABLE], repo).stdout
    assert not planned_rules(plan) & set(EXPENSIVE_RULES), plan

    (repo / TABLE).unlink()
    plan = run([*SNAKEMAKE, "-n", TABLE], repo).stdout
    assert planned_rules(plan) == {"table_table1_detection"}, plan
    run([*SNAKEMAKE, "-c", "2", TABLE], repo)
    assert (repo / TABLE).read_bytes() == original


def test_metrics_and_plots_are_declared_and_load_cleanly(repo: Path) -> None:
    metrics = run(["dvc", "metrics", "show"], repo)
    assert f"{RESULTS}/eval/grpo-full/refcocog.multi.json" in metrics.stdout
    assert "predictions" not in metrics.stdout and "WARNING" not in metrics.stderr, metrics.stderr
    plots = run(["dvc", "plots", "show", "--json"], repo)
    assert f"{RESULTS}/train_metrics/grpo-full.csv" in plots.stdout
    assert "WARNING" not in plots.stderr and "errors" not in json.loads(plots.stdout), plots.stderr


def test_repro_on_unchanged_tree_does_nothing(repo: Path) -> None:
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert stages_run(run(["dvc", "repro"], repo).stdout) == set()


def changed_stages(repo: Path) -> set[str]:
    """Stages ``dvc status`` reports changed (the keys of its JSON, ``stage`` or ``dvc.yaml:stage``)."""
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    return {name.split(":")[-1] for name in status}


def further_seed_stages(config: dict, variant: str | None = None) -> set[str]:
    """``grpo_seeds@<model>`` of every seed after a variant's first (of ``variant`` only, when given)."""
    runs = validate_config(config).grpo_runs()
    return {
        f"grpo_seeds@{model}"
        for model, trained in runs.items()
        if model != grpo_model(trained.variant) and variant in (None, trained.variant)
    }


def test_shared_grpo_setting_changes_every_grpo_stage(repo: Path) -> None:
    path = repo / "config/config.yaml"
    original_config, original_dvc = path.read_text(), (repo / "dvc.yaml").read_text()
    config = yaml.safe_load(original_config)
    config["grpo"]["gradient_accumulation_steps"] = 2  # a shared key, absent from the reduced config
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    run(["regionreasoner", "dvc-yaml", "--configfile", "config/config.yaml"], repo)
    try:
        expected = {f"grpo@{v}" for v in config["grpo"]["variants"]} | further_seed_stages(config)
        assert changed_stages(repo) == expected
    finally:
        path.write_text(original_config)
        (repo / "dvc.yaml").write_text(original_dvc)
    assert "up to date" in run(["dvc", "status"], repo).stdout


def test_reward_weight_change_reruns_only_that_variant_and_downstream(repo: Path) -> None:
    path = repo / "config/config.yaml"
    config = yaml.safe_load(path.read_text())
    config["grpo"]["variants"][CHANGED_VARIANT]["beta"] = 1.5  # the consistency reward's weight
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    # The variant's further seeds track the whole of grpo.variants (DVC cannot address a name with dots).
    seeds = further_seed_stages(config, CHANGED_VARIANT)
    assert changed_stages(repo) == {f"grpo@{CHANGED_VARIANT}"} | seeds
    ran = stages_run(run(["dvc", "repro"], repo, timeout=900).stdout)
    models = [grpo_model(CHANGED_VARIANT)] + [stage.split("@")[1] for stage in seeds]
    must = {
        f"grpo@{CHANGED_VARIANT}",
        *seeds,
        *(f"{stage}@{model}" for stage in ("evaluate", "probe", "curves") for model in models),
        "table_training",
        "fig_reward_curves",
    }
    # Beyond those (the training curve changes), only tables and figures that read one of the
    # variant's files, and then only where that file's content changed; never data, bench, SFT,
    # the other variants, their evaluations or Table 6.
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    readers = {
        name
        for name, stage in stages.items()
        if "foreach" not in stage and any(f"/grpo-{CHANGED_VARIANT}" in dep for dep in stage["deps"])
    }
    assert must <= ran, ran
    assert ran - must <= readers, f"stages outside the changed variant's downstream ran: {ran - must - readers}"
    assert "up to date" in run(["dvc", "status"], repo).stdout


def experiments(repo: Path) -> dict[str, dict]:
    """``dvc exp show --json``: each experiment's data (params, metrics) by name, under any baseline."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    return {
        rev["name"]: rev["data"]
        for baseline in shown
        for exp in baseline.get("experiments") or []
        for rev in exp["revs"]
    }


def run_experiment(repo: Path, name: str, setting: str, target: str) -> set[str]:
    """The stages one ``dvc exp run --temp`` ran: ``setting`` (``key=value``) set in the config the
    stages read, then ``target`` and the stages upstream of it reproduced where changed."""
    cmd = ["dvc", "exp", "run", "--temp", "-n", name, "-S", f"config/config.yaml:{setting}", target]
    return stages_run(run(cmd, repo).stdout)


def test_experiments_rerun_only_what_their_key_affects_and_show_their_metrics(repo: Path) -> None:
    """Each experiment targets one stage, so the test pays for one stage; DVC reruns any stage
    upstream of the target whose params changed, so the stages run are those the key affects."""
    assert "up to date" in run(["dvc", "status"], repo).stdout
    for key, value in (("user.name", "test"), ("user.email", "test@example.org")):
        run(["git", "config", key, value], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "--allow-empty", "-m", "the build: the experiments' baseline"], repo)
    metric = f"{RESULTS}/eval/sft/refcocog.multi.json"
    baseline = json.loads((repo / metric).read_text())

    # A report-only key: the training table reads every training curve, probe and evaluation.
    assert run_experiment(repo, "report-note", "report.synthetic_note=Note.", "table_training") == {"table_training"}
    # An evaluation key: the SFT model is evaluated again, not trained again.
    assert run_experiment(repo, "short-answers", "evaluate.max_new_tokens=8", "evaluate@sft") == {"evaluate@sft"}

    shown = experiments(repo)
    assert {"report-note", "short-answers"} <= shown.keys(), shown.keys()
    assert shown["report-note"]["params"]["config/config.yaml"]["data"]["report"]["synthetic_note"] == "Note."
    assert shown["short-answers"]["params"]["config/config.yaml"]["data"]["evaluate"]["max_new_tokens"] == 8
    # Each experiment shows its own metrics (DVC shows a JSON file's numbers, not its lists): the
    # report's are the baseline's; eight new tokens cut every answer short of a parsable box.
    numbers = {name: shown[name]["metrics"][metric]["data"] for name in ("report-note", "short-answers")}
    keys = ("turns", "format_rate", "ap50")
    assert baseline["format_rate"] > 0
    assert {k: numbers["report-note"][k] for k in keys} == {k: baseline[k] for k in keys}
    assert {k: numbers["short-answers"][k] for k in keys} == {"turns": baseline["turns"], "format_rate": 0, "ap50": 0}
    # --temp experiments run in a copy: the workspace is still the baseline.
    assert "up to date" in run(["dvc", "status"], repo).stdout
