"""Paper-scale checkpoints: the base model and the released baselines (docs/method.md sections 1, 7).

Only paper-scale runs reach the hub; the embedded default builds its model locally and never
calls this. A local folder is copied as is, so a cluster without internet can point the config
at a pre-downloaded checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from regionreasoner.io import InputError, MissingInput, atomic_path

KNOWN = {
    "Qwen/Qwen2.5-VL-7B-Instruct": "base model of the paper",
    "lmsdss/RegionReasoner-7B": "released RegionReasoner checkpoint",
    "Ricky06662/VisionReasoner-7B": "VisionReasoner baseline",
    "Ricky06662/Seg-Zero-7B": "Seg-Zero baseline",
    "Qwen/Qwen2-VL-7B-Instruct": "Qwen2-VL baseline",
    "lmsdss/regionreasoner_test_data": "released RegionDial-Bench test files",
}


WEIGHTS = ("*.safetensors", "pytorch_model*.bin")  # what save_pretrained writes, sharded or not


def check_model_folder(path: Path) -> None:
    """Refuse a folder that cannot hold a saved model, before transformers sees it.

    transformers treats a path that is not a folder as a hub id, so a typo in a local path ends in
    a hub error ("Repo id must be in the form ...") that names neither the folder nor the fix."""
    if not path.is_dir():
        if not path.exists() and _is_kept_checkpoint(path):
            raise MissingInput(_missing_kept_checkpoint(path))
        kind = InputError if path.exists() else MissingInput
        problem = "is a file" if path.exists() else "no such model folder"
        raise kind(f"{path}: {problem}; build or fetch the model first (snakemake {path}) or fix the path")
    for name in ("config.json", "tokenizer_config.json"):
        if not (path / name).is_file():
            raise InputError(
                f"{path}: has no {name}, so it is not a saved model (a half-copied or training "
                "folder?); rebuild it or point at the model folder"
            )
    if not any(any(path.glob(pattern)) for pattern in WEIGHTS):
        raise InputError(f"{path}: has no weights ({' or '.join(WEIGHTS)}); rebuild or fetch the model again")


def _is_kept_checkpoint(path: Path) -> bool:
    """``<results>/checkpoints/<model>/step-<N>``: weights a training kept at one of its curve steps."""
    return path.name.startswith("step-") and path.parent.parent.name == "checkpoints"


def _missing_kept_checkpoint(path: Path) -> str:
    """Why a kept checkpoint can be missing and the fix: curve steps change no training (an
    operational key), so a step added after the model was trained was never kept."""
    model, step, results = path.parent.name, path.name.removeprefix("step-"), path.parent.parent.parent
    return (
        f"{path}: no such kept checkpoint; {model} was trained before step {step} was one of its curve_steps "
        f"(changing curve_steps retrains nothing): rerun its training to keep the step (snakemake -f "
        f"{results}/models/{model} --configfile <your config>) or remove {step} from curve_steps"
    )


def _looks_local(source: str) -> bool:
    """A source written as a path (not ``namespace/name``): reported missing, never sent to the hub."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or Path(source).exists()


def fetch_model(source: str, out_dir: Path, repo_type: str = "model", allow_patterns: list[str] | None = None) -> None:
    """Materialise ``source`` (hub id or local folder) at ``out_dir`` atomically.

    ``repo_type="dataset"`` fetches a hub dataset the same way (the released benchmark files);
    ``allow_patterns`` limits a hub download to the files it names (a local folder is copied whole).
    """
    local = Path(source).expanduser()
    if _looks_local(source) and not local.is_dir():
        raise InputError(
            f"{source}: no such folder; check the path (a local model or dataset is an existing "
            "folder, a hub id is written namespace/name)"
        )
    with atomic_path(out_dir, directory=True) as tmp:
        if local.is_dir():
            shutil.copytree(local, tmp, dirs_exist_ok=True)
        else:
            from huggingface_hub import snapshot_download

            snapshot_download(repo_id=source, repo_type=repo_type, local_dir=tmp, allow_patterns=allow_patterns)
    print(f"{source} ({KNOWN.get(source, f'custom {repo_type}')}) -> {out_dir}")
