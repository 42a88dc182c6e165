"""Every command refuses bad input in one line: the file (and key or line), the problem, what to do.

One table of the mistakes a user makes (missing, empty, truncated, wrong-schema and wrong-type
inputs of every ``regionreasoner`` subcommand, and configs with misspelt keys or no base), each run
through the command in-process (a subprocess per case would import torch and transformers forty
times). Each case must exit non-zero, print no traceback, put the file and the problem in the
first line, and leave nothing behind: a refused command writes no output, not even a folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.cli import DEBUG_ENV, build_parser, main
from regionreasoner.io import InputError
from tests.conftest import REPO, copy_workflow, snakemake

TEST = REPO / "config" / "test.yaml"
BASE = REPO / "config" / "config.yaml"
# a first line says what to do: one of these phrases (every message in the table below uses one)
HINT = re.compile(
    r"check |rebuild|rerun|build .*first|download it|fetch it|did you mean|choose one of|put 'extends|"
    r"expects |is this a|see |fix |point at|start from"
)


def _turns(image: Path, n: int) -> str:
    """``n`` training turns as build-train writes them (enough for the test config's GRPO prompt pool)."""
    turn = {
        "image_path": str(image),
        "problem": "the red square",
        "scene": "a red square",
        "target": "the red square",
        "solution": [{"bbox_2d": [0, 0, 4, 4], "point_2d": [2, 2]}],
    }
    return "".join(json.dumps(turn) + "\n" for _ in range(n))


def _bench(image: Path) -> str:
    turn = {"question": "the red square", "bbox": [0, 0, 4, 4]}
    return json.dumps([{"image_path": str(image), "image_id": 1, "conversational_turns": [turn]}])


def _released(image: str) -> str:
    turn = {"question": "A cat", "bboxes": [[0, 0, 4, 4]]}
    return json.dumps([{"image_id": 7, "image_path": image, "conversational_turns": [turn]}])


def _write_inputs(root: Path) -> None:
    """The good and bad files the cases point at, all under ``root``."""
    root.mkdir()
    image = root / "image.png"
    Image.new("RGB", (8, 8), "red").save(image)
    files = {
        "bench.json": _bench(image),
        "bench_noimage.json": _bench(root / "gone.png"),
        "truncated.json": '[{"image_path": "x",\n',
        "empty.json": "",
        "metrics.json": '{"ap50": 12.5}\n',
        "nokeys.json": '[{"image": "x"}]\n',
        "turns.jsonl": _turns(image, 64),
        "truncated.jsonl": _turns(image, 1) + '{"problem": "x",\n',
        "nokeys.jsonl": '{"question": "x"}\n',
        "array.jsonl": "[1, 2]\n",
        "empty.jsonl": "\n",
        "bad.yaml": "sft:\n  max_steps: [1, 2\n",
        "list.yaml": "- sft\n",
        "noext.yaml": "sft: {max_step: 10}\n",
        "typo.yaml": f"extends: {BASE}\nsft: {{max_step: 10}}\n",
        "nested_typo.yaml": f"extends: {BASE}\ndata: {{synht: {{images: 4}}}}\n",
        "wrongtype.yaml": f"extends: {BASE}\nsft: {{max_steps: ten}}\n",
        "nobase.yaml": "extends: config/nope.yaml\n",
        "manifest.yaml": "files: 3\n",
        "refs.p": "not a pickle\n",
        "instances_list.json": "[]\n",
        "elsewhere.yaml": f"extends: {TEST}\nresults: {root}/results\n",
        "partial.yaml": f"extends: {TEST}\nresults: {root}/partial\n",
        "partial/eval/random/refcocoplus.multi.json": '{"ap50": 1.0,\n',
        "notimage.jpg": "not an image\n",
        "released_notimage.json": _released("notimage.jpg"),
        "released_noimage.json": _released("gone.jpg"),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "binary.jsonl").write_bytes(image.read_bytes())
    for category in ("direct_attributes", "relative_position"):  # a V*Bench copy: one question per category
        (root / "vstar" / category).mkdir(parents=True)
        (root / "vstar" / category / "1.json").write_text(json.dumps({"question": "q", "options": ["a", "b"]}))
        (root / "vstar" / category / "1.png").write_bytes(image.read_bytes())
    noweights = root / "noweights"
    noweights.mkdir()
    (noweights / "config.json").write_text("{}")
    (noweights / "tokenizer_config.json").write_text("{}")
    checkpoint = root / "checkpoint-3"  # a training checkpoint cut short: weights, no config or trainer state
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"")
    (checkpoint / "optimizer.pt").write_bytes(b"")


@dataclass(frozen=True)
class Case:
    """argv and the fragments the first line must hold; ``{in}``/``{out}`` are the input and output folders."""

    name: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]


def C(name: str, argv: str, *expect: str) -> Case:
    return Case(name, tuple(argv.replace("{test}", str(TEST)).split()), expect)


REFER = "--refs {in}/refs.p --instances {in}/metrics.json --images {in} --splits test --out {out}/x.json"
CASES = [
    # configs: missing, empty, malformed, not a mapping, no base, misspelt keys, wrong types
    C("config-missing", "validate-config --configfile {in}/nope.yaml", "{in}/nope.yaml: no such file"),
    C("config-empty", "validate-config --configfile {in}/empty.json", "{in}/empty.json: is empty"),
    C("config-malformed", "validate-config --configfile {in}/bad.yaml", "{in}/bad.yaml: line 3", "not valid YAML"),
    C("config-list", "validate-config --configfile {in}/list.yaml", "{in}/list.yaml: holds a YAML list"),
    C(
        "config-no-extends",
        "validate-config --configfile {in}/noext.yaml",
        "{in}/noext.yaml: not a complete configuration",
        "put 'extends: config/config.yaml' at its top",
    ),
    C(
        "config-misspelt",
        "validate-config --configfile {in}/typo.yaml",
        "{in}/typo.yaml",
        "sft.max_step: unknown key",
        "did you mean 'max_steps'",
    ),
    C(
        "config-misspelt-section",
        "validate-config --configfile {in}/nested_typo.yaml",
        "data.synht: unknown key",
        "did you mean 'synth'",
    ),
    C(
        "config-wrong-type",
        "validate-config --configfile {in}/wrongtype.yaml",
        "{in}/wrongtype.yaml",
        "sft.max_steps:",
        "valid integer",
    ),
    C(
        "config-base-missing",
        "validate-config --configfile {in}/nobase.yaml",
        "{in}/nobase.yaml: extends: no file config/nope.yaml",
    ),
    C("show-config-missing", "show-config --configfile {in}/nope.yaml --stage sft", "{in}/nope.yaml: no such file"),
    C(
        "show-config-variant",
        "show-config --configfile {test} --stage grpo --variant nope",
        "test.yaml: grpo.variants has no 'nope'",
        "choose one of",
    ),
    C("show-prompt-config", "show-prompt --configfile {in}/typo.yaml --model sft --question q", "sft.max_step"),
    C("show-prompt-model", "show-prompt --configfile {test} --model sfft --question q", "unknown model id 'sfft'"),
    C("plan-config", "plan --configfile {in}/typo.yaml", "{in}/typo.yaml", "did you mean 'max_steps'"),
    C(
        "preflight-model-missing",
        "preflight --configfile {test} --stage evaluate --model {in}/nope",
        "{in}/nope: no such model folder",
    ),
    C(
        "preflight-train-truncated",
        "preflight --configfile {test} --stage sft --model {in}/noweights --train {in}/truncated.jsonl",
        "{in}/truncated.jsonl: line 2 is not valid JSON",
    ),
    C(
        "preflight-no-train",
        "preflight --configfile {test} --stage grpo --model {in}/noweights",
        "preflight --stage grpo needs --train; point at",
    ),
    C("plan-profile-missing", "plan --configfile {test} --profile {in}/nope.yaml", "{in}/nope.yaml: no such file"),
    C(
        "plan-throughput-truncated",
        "plan --configfile {test} --throughput {in}/truncated.json",
        "{in}/truncated.json: line 2 column 1: not valid JSON",
    ),
    C(
        "dvc-yaml-no-extends",
        "dvc-yaml --configfile {in}/noext.yaml --out {out}/dvc.yaml",
        "not a complete configuration",
    ),
    C("synth-config", "synth --configfile {in}/typo.yaml --out {out}/synth", "did you mean 'max_steps'"),
    C(
        "table-config",
        "table --configfile {in}/noext.yaml --name table1_detection --out-md {out}/t.md --out-tex {out}/t.tex",
        "{in}/noext.yaml: not a complete configuration",
    ),
    C(
        "table-name",
        "table --configfile {test} --name table99 --out-md {out}/t.md --out-tex {out}/t.tex",
        "unknown table 'table99'",
        "choose one of",
    ),
    C(
        "table-inputs-missing",
        "table --configfile {in}/elsewhere.yaml --name table1_detection --out-md {out}/t.md --out-tex {out}/t.tex",
        "{in}/results/eval/",
        ": no such file",
        "build it first",
    ),
    C(
        "table-input-truncated",
        "table --configfile {in}/partial.yaml --name table1_detection --out-md {out}/t.md --out-tex {out}/t.tex",
        "{in}/partial/eval/random/refcocoplus.multi.json: line 2 column 1",
    ),
    C(
        "figure-inputs-missing",
        "figure --configfile {in}/elsewhere.yaml --name fig_per_round --out {out}/f.png",
        "{in}/results/",
        ": no such file",
    ),
    C("figure-name", "figure --configfile {test} --name fig_nope --out {out}/f.png", "fig_nope"),
    C("schema-out-under-file", "schema --out {in}/empty.json/schema.json", "{in}/empty.json", "check the path"),
    # data: manifest, refer pickle, COCO instances
    C(
        "download-manifest-missing",
        "download --configfile {test} --manifest {in}/nope.yaml --out {out}/raw",
        "{in}/nope.yaml: no such file",
    ),
    C(
        "download-manifest-malformed",
        "download --configfile {test} --manifest {in}/bad.yaml --out {out}/raw",
        "{in}/bad.yaml: line 3",
        "not valid YAML",
    ),
    C(
        "download-manifest-schema",
        "download --configfile {test} --manifest {in}/manifest.yaml --out {out}/raw",
        "{in}/manifest.yaml: expected a mapping with a 'files' list",
    ),
    C(
        "build-bench-refs-missing",
        "build-bench --configfile {test} " + REFER.replace("refs.p", "nope.p"),
        "{in}/nope.p: no such file",
    ),
    C(
        "build-bench-refs-not-pickle",
        "build-bench --configfile {test} " + REFER,
        "{in}/refs.p: not a readable refer pickle",
    ),
    C(
        "build-train-refs-not-pickle",
        "build-train --configfile {test} " + REFER,
        "{in}/refs.p: not a readable refer pickle",
    ),
    # released benchmark
    C(
        "convert-released-missing",
        "convert-released --raw {in}/nope.json --images {in} --out {out}/b.json",
        "{in}/nope.json: no such file",
    ),
    C(
        "convert-released-truncated",
        "convert-released --raw {in}/truncated.json --images {in} --out {out}/b.json",
        "{in}/truncated.json: not valid JSON",
        "fetch it again",
    ),
    C(
        "convert-released-schema",
        "convert-released --raw {in}/metrics.json --images {in} --out {out}/b.json",
        "{in}/metrics.json: expected a JSON list of dialogues",
    ),
    C(
        "convert-released-not-an-image",
        "convert-released --raw {in}/released_notimage.json --images {in} --out {out}/b.json",
        "{in}/notimage.jpg: not a readable image",
    ),
    C(
        "convert-released-image-missing",
        "convert-released --raw {in}/released_noimage.json --images {in} --out {out}/b.json",
        "{in}/released_noimage.json: dialogue 0 (image_id 7): image not found at {in}/gone.jpg",
    ),
    C(
        "fetch-snapshot-manifest-missing",
        "fetch-snapshot --configfile {test} --manifest {in}/nope.yaml --name vstar_bench --out {out}/snap",
        "{in}/nope.yaml: no such file",
    ),
    C(
        "fetch-snapshot-name",
        "fetch-snapshot --configfile {test} --name vstr_bench --out {out}/snap",
        "manifest.yaml: no snapshot named 'vstr_bench'",
        "choose one of",
    ),
    C(
        "fetch-released-local-missing",
        "fetch-released --repo {in}/nope --out {out}/released --files raw/refcocog_multi_turn.json",
        "{in}/nope: no such folder",
    ),
    # training turns (JSONL)
    C(
        "merge-turns-missing",
        "merge-turns {in}/turns.jsonl {in}/nope.jsonl --out {out}/t.jsonl",
        "{in}/nope.jsonl: no such file",
    ),
    C(
        "merge-turns-truncated",
        "merge-turns {in}/turns.jsonl {in}/truncated.jsonl --out {out}/t.jsonl",
        "{in}/truncated.jsonl: line 2 is not valid JSON",
    ),
    C(
        "merge-turns-schema",
        "merge-turns {in}/nokeys.jsonl --out {out}/t.jsonl",
        "{in}/nokeys.jsonl: line 1 has no 'image_path', 'problem', 'solution'",
    ),
    C(
        "build-model-empty",
        "build-model --configfile {test} --turns {in}/empty.jsonl --out {out}/base",
        "{in}/empty.jsonl: is empty",
    ),
    C(
        "build-model-not-jsonl",
        "build-model --configfile {test} --turns {in}/array.jsonl --out {out}/base",
        "{in}/array.jsonl: line 1 holds a JSON list",
    ),
    # benchmarks (JSON)
    C("build-single-missing", "build-single --bench {in}/nope.json --out {out}/s.json", "{in}/nope.json: no such file"),
    C("build-single-empty", "build-single --bench {in}/empty.json --out {out}/s.json", "{in}/empty.json: is empty"),
    C(
        "build-single-truncated",
        "build-single --bench {in}/truncated.json --out {out}/s.json",
        "{in}/truncated.json: line 2 column 1: not valid JSON",
    ),
    C(
        "build-single-wrong-file",
        "build-single --bench {in}/metrics.json --out {out}/s.json",
        "{in}/metrics.json: holds a JSON dict, expected a list of dialogues",
    ),
    C(
        "build-single-schema",
        "build-single --bench {in}/nokeys.json --out {out}/s.json",
        "{in}/nokeys.json: dialogue 0 has no 'image_path', 'conversational_turns'",
    ),
    # model folders and checkpoints
    C(
        "fetch-model-local-missing",
        "fetch-model --source {in}/models/nope --out {out}/base",
        "{in}/models/nope: no such folder",
    ),
    C(
        "sft-model-missing",
        "sft --configfile {test} --model {in}/nope --train {in}/turns.jsonl --out {out}/sft --metrics {out}/sft.csv "
        "--kept {out}/kept",
        "{in}/nope: no such model folder",
    ),
    C(
        "sft-model-no-weights",
        "sft --configfile {test} --model {in}/noweights --train {in}/turns.jsonl --out {out}/sft "
        "--metrics {out}/sft.csv --kept {out}/kept",
        "{in}/noweights: has no weights",
    ),
    C(
        "sft-train-truncated",
        "sft --configfile {test} --model {in}/noweights --train {in}/truncated.jsonl "
        "--out {out}/sft --metrics {out}/sft.csv --kept {out}/kept",
        "{in}/truncated.jsonl: line 2 is not valid JSON",
    ),
    C(
        "grpo-checkpoint-without-state",
        "grpo --configfile {test} --variant full --model {in}/checkpoint-3 "
        "--train {in}/turns.jsonl --out {out}/g --metrics {out}/g.csv --kept {out}/kept",
        "{in}/checkpoint-3: has no config.json",
    ),
    C(
        "grpo-variant",
        "grpo --configfile {test} --variant nope --model {in}/noweights --train {in}/turns.jsonl "
        "--out {out}/g --metrics {out}/g.csv --kept {out}/kept",
        "test.yaml: grpo.variants has no 'nope'",
    ),
    C(
        "evaluate-model-missing",
        "evaluate --configfile {test} --model results/models/nope --run x={in}/bench.json --out-dir {out}/eval",
        "results/models/nope: no such model folder",
    ),
    C(
        "evaluate-kept-checkpoint-missing",
        "evaluate --configfile {test} --model results/checkpoints/sft/step-7 --run x={in}/bench.json "
        "--out-dir {out}/eval",
        "results/checkpoints/sft/step-7: no such kept checkpoint; sft was trained before step 7 was one of its "
        "curve_steps (changing curve_steps retrains nothing): rerun its training to keep the step (snakemake -f "
        "results/models/sft",
    ),
    C(
        "evaluate-bench-image-missing",
        "evaluate --configfile {test} --model {in}/noweights --run x={in}/bench_noimage.json --out-dir {out}/eval",
        "{in}/bench_noimage.json: dialogue 0: image {in}/gone.png not found",
    ),
    C(
        "evaluate-bench-truncated",
        "evaluate --configfile {test} --model {in}/noweights --run x={in}/truncated.json --out-dir {out}/eval",
        "{in}/truncated.json: line 2 column 1",
    ),
    C(
        "evaluate-run-pair",
        "evaluate --configfile {test} --model {in}/noweights --run {in}/bench.json --out-dir {out}/eval",
        "--run expects NAME=BENCH.json",
    ),
    C(
        "evaluate-vstar-not-a-vstar-folder",
        "evaluate-vstar --configfile {test} --model {in}/noweights --bench {in} --out {out}/vstar.json",
        "{in}: no direct_attributes/ folder",
        "is this a V*Bench copy",
    ),
    C(
        "evaluate-vstar-model-missing",
        "evaluate-vstar --configfile {test} --model {in}/nope --bench {in}/vstar --out {out}/vstar.json",
        "{in}/nope: no such model folder",
    ),
    C(
        "probe-prompts-schema",
        "probe --configfile {test} --model {in}/noweights --prompts {in}/nokeys.jsonl --out {out}/p.json",
        "{in}/nokeys.jsonl: line 1 has no 'image_path'",
    ),
    C(
        "probe-model-checkpoint",
        "probe --configfile {test} --model {in}/checkpoint-3 --prompts {in}/turns.jsonl --out {out}/p.json",
        "{in}/checkpoint-3: has no config.json",
    ),
    # scoring and rewards
    C(
        "score-bench-truncated",
        "score --predictions {in}/turns.jsonl --bench {in}/truncated.json --out {out}/m.json",
        "{in}/truncated.json: line 2 column 1: not valid JSON",
    ),
    C(
        "score-predictions-truncated",
        "score --predictions {in}/truncated.jsonl --bench {in}/bench.json --out {out}/m.json",
        "{in}/truncated.jsonl: line 2 is not valid JSON",
    ),
    C(
        "score-predictions-binary",
        "score --predictions {in}/binary.jsonl --bench {in}/bench.json --out {out}/m.json",
        "{in}/binary.jsonl: not UTF-8 text",
    ),
    C(
        "score-predictions-folder",
        "score --predictions {in} --bench {in}/bench.json --out {out}/m.json",
        "{in}: is a folder",
    ),
    C(
        "baseline-random-bench",
        "baseline-random --run refcocog.multi={in}/nokeys.json "
        "--instances refcocog={in}/metrics.json --out-dir {out}/random",
        "{in}/nokeys.json: dialogue 0 has no",
    ),
    C(
        "baseline-random-instances",
        "baseline-random --run refcocog.multi={in}/bench.json "
        "--instances refcocog={in}/instances_list.json --out-dir {out}/random",
        "{in}/instances_list.json: top level",
    ),
    C(
        "curve-untrained",
        "curve --configfile {test} --model-id base --out {out}/c.json",
        "'base' has no checkpoint curve",
    ),
    C(
        "select-checkpoint-missing",
        "select-checkpoint --curve {in}/nope.json --out {out}/selected",
        "{in}/nope.json: no such file",
    ),
    C(
        "reward-missing",
        "reward --variant full --input {in}/nope.jsonl --out {out}/r.jsonl",
        "{in}/nope.jsonl: no such file",
    ),
    C(
        "reward-schema",
        "reward --variant full --input {in}/nokeys.jsonl --out {out}/r.jsonl",
        "{in}/nokeys.jsonl: line 1 has no 'completion', 'solution'",
    ),
]


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_input") / "in"
    _write_inputs(root)
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_in_one_line(case: Case, inputs: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # where a user runs the commands: config/ and paper/ are found from here
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    out = tmp_path / "out"
    fill = {"{in}": str(inputs), "{out}": str(out)}
    argv = [_fill(a, fill) for a in case.argv]
    before = _tree(inputs)
    assert main(argv) != 0
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith(f"regionreasoner {argv[0]}: error: "), err
    for fragment in case.expect:
        assert _fill(fragment, fill) in first, err
    assert HINT.search(first), f"the first line says what to do: {first}"
    assert "Traceback" not in err
    assert not out.exists(), f"left behind: {sorted(_tree(out))}"
    assert _tree(inputs) == before


def _fill(text: str, fill: dict[str, str]) -> str:
    for key, value in fill.items():
        text = text.replace(key, value)
    return text


def test_the_sweep_covers_every_subcommand() -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands == {c.argv[0] for c in CASES}
    assert len(CASES) >= 40


def test_debug_shows_the_traceback(inputs: Path, tmp_path: Path, monkeypatch) -> None:
    argv = ["build-single", "--bench", str(inputs / "truncated.json"), "--out", str(tmp_path / "s.json")]
    with pytest.raises(InputError, match="truncated.json: line 2"):
        main(["--debug", *argv])
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(InputError, match="truncated.json: line 2"):
        main(argv)
    assert not (tmp_path / "s.json").exists()


def test_snakemake_refuses_a_config_without_base_in_one_line(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    (workdir / "mine.yaml").write_text("sft: {max_step: 10}\n")
    proc = snakemake(workdir, "-n", "--configfile", "mine.yaml", check=False, timeout=120)
    assert proc.returncode != 0
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error: ") and "mine.yaml: not a complete configuration" in first, proc.stderr
    assert "put 'extends: config/config.yaml' at its top" in first
    assert "sft.max_step: unknown key; did you mean 'max_steps'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (workdir / "results").exists()
