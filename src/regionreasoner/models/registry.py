"""Paper-scale checkpoints: the base model and the released baselines (docs/method.md sections 1, 7).

Only paper-scale runs reach the hub; the embedded default builds its model locally and never
calls this. A local folder is copied as is, so a cluster without internet can point the config
at a pre-downloaded checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from regionreasoner.io import atomic_path

KNOWN = {
    "Qwen/Qwen2.5-VL-7B-Instruct": "base model of the paper",
    "lmsdss/RegionReasoner-7B": "released RegionReasoner checkpoint",
    "Ricky06662/VisionReasoner-7B": "VisionReasoner baseline",
    "Ricky06662/Seg-Zero-7B": "Seg-Zero baseline",
    "Qwen/Qwen2-VL-7B-Instruct": "Qwen2-VL baseline",
    "lmsdss/regionreasoner_test_data": "released RegionDial-Bench test files",
}


def fetch_model(source: str, out_dir: Path, repo_type: str = "model", allow_patterns: list[str] | None = None) -> None:
    """Materialise ``source`` (hub id or local folder) at ``out_dir`` atomically.

    ``repo_type="dataset"`` fetches a hub dataset the same way (the released benchmark files);
    ``allow_patterns`` limits a hub download to the files it names (a local folder is copied whole).
    """
    local = Path(source)
    with atomic_path(out_dir, directory=True) as tmp:
        if local.is_dir():
            shutil.copytree(local, tmp, dirs_exist_ok=True)
        else:
            from huggingface_hub import snapshot_download

            snapshot_download(repo_id=source, repo_type=repo_type, local_dir=tmp, allow_patterns=allow_patterns)
    print(f"{source} ({KNOWN.get(source, f'custom {repo_type}')}) -> {out_dir}")
