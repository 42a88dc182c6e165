"""Verified, resumable downloads of the paper-scale data (docs/method.md section 1).

``manifest.yaml`` lists each file with its URL, sha256, size and where to extract it. A download
goes to ``<file>.part``, resumes with an HTTP Range request after a dropped connection, retries a
bounded number of times with exponential backoff (then tries the mirrors in order), is checked
against the manifest and only then renamed to its final name: a wrong or unfinished file never
sits at the final path. A manifest entry without a sha256 is never trusted: the file is
downloaded, its sha256 printed, and the run fails asking the user to pin it. Zip extraction
refuses members that would land outside the target directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests
from tqdm import tqdm

from regionreasoner.io import atomic_path, atomic_write_text, read_yaml

CHUNK = 1 << 16
"""Bytes per read: a dropped connection loses at most the chunk being read."""
TIMEOUT = (10, 60)
"""Seconds to connect and between received bytes."""
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """No URL of a manifest entry delivered a verified file."""


class ChecksumError(DownloadError):
    """A downloaded file's sha256 or size differs from the manifest (or the manifest has none)."""


@dataclass(frozen=True)
class ManifestEntry:
    """One downloadable file of the manifest."""

    name: str
    url: str
    sha256: str | None
    size: int | None
    extract_to: str | None

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.url.split("?", 1)[0]).name


def read_manifest(path: Path) -> list[ManifestEntry]:
    """Parse and validate ``manifest.yaml`` (``files: [{name, url, sha256, size, extract_to}]``)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ValueError(
            f"{path}: expected a mapping with a 'files' list; see src/regionreasoner/data/manifest.yaml for the format"
        )
    entries = []
    for index, row in enumerate(data["files"]):
        keys = ("name", "url", "sha256", "size", "extract_to")
        missing = [k for k in keys if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(
                f"{path}: files[{index}] has no {', '.join(map(repr, missing))}; "
                "see src/regionreasoner/data/manifest.yaml for the format"
            )
        sha = row["sha256"]
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise ValueError(f"{path}: files[{index}] ({row['name']}) sha256 must be 64 lowercase hex digits or null")
        entries.append(ManifestEntry(row["name"], row["url"], sha, row["size"], row["extract_to"]))
    return entries


@dataclass(frozen=True)
class SnapshotEntry:
    """A hub dataset kept as its own folder of files (no archive is published), at a pinned revision.

    ``sha256`` pins the whole tree: the sha256 of the sorted lines ``<relative path> <file sha256>``
    (``tree_digest``), so one value covers every file, as a zip's sha256 does.
    """

    name: str
    repo: str
    revision: str
    sha256: str | None
    files: int | None


def _sha256_value(path: Path, index: int, row: dict, key: str) -> str | None:
    sha = row["sha256"]
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise ValueError(f"{path}: {key}[{index}] ({row['name']}) sha256 must be 64 lowercase hex digits or null")
    return sha


def read_snapshots(path: Path) -> list[SnapshotEntry]:
    """The ``snapshots`` of ``manifest.yaml``: ``[{name, repo, revision, sha256, files}]``."""
    data = read_yaml(path)
    entries = []
    for index, row in enumerate((data or {}).get("snapshots") or []):
        keys = ("name", "repo", "revision", "sha256", "files")
        missing = [k for k in keys if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"{path}: snapshots[{index}] has no {', '.join(map(repr, missing))}")
        if not re.fullmatch(r"[0-9a-f]{40}", str(row["revision"])):
            raise ValueError(f"{path}: snapshots[{index}] ({row['name']}) revision must be a 40-digit commit")
        sha = _sha256_value(path, index, row, "snapshots")
        entries.append(SnapshotEntry(row["name"], row["repo"], row["revision"], sha, row["files"]))
    return entries


def tree_digest(root: Path) -> tuple[str, int]:
    """sha256 over ``<relative path> <sha256>`` lines of every file under ``root`` (sorted), and the file count.

    Hidden files and folders (the hub client's ``.cache``) are left out: they are not the data.
    """
    files = sorted(
        p
        for p in Path(root).rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    lines = "".join(f"{p.relative_to(root).as_posix()} {sha256_file(p)}\n" for p in files)
    return hashlib.sha256(lines.encode("utf-8")).hexdigest(), len(files)


def download_snapshot(manifest: Path, name: str, out_root: Path) -> Path:
    """Fetch snapshot ``name`` of the manifest to ``out_root / name`` and verify its tree digest.

    As with files, an entry without a sha256 is never trusted: the digest is printed and the run
    fails asking the user to pin it (the fetched copy is kept beside, as ``<name>.part``).
    """
    manifest = Path(manifest)
    entries = {e.name: e for e in read_snapshots(manifest)}
    if name not in entries:
        raise ValueError(f"{manifest}: no snapshot named {name!r}; choose one of {', '.join(entries) or 'none'}")
    entry = entries[name]
    out_dir = Path(out_root) / entry.name
    part = out_dir.with_name(out_dir.name + ".part")
    if not part.exists():
        from huggingface_hub import snapshot_download

        with atomic_path(part, directory=True) as tmp:
            snapshot_download(repo_id=entry.repo, repo_type="dataset", revision=entry.revision, local_dir=tmp)
    digest, count = tree_digest(part)
    if entry.sha256 is None:
        print(f"{entry.name}: tree sha256 {digest}, {count} files (not pinned in {manifest})")
        raise ChecksumError(
            f"{manifest}: snapshot {entry.name!r} has no sha256, so the download cannot be trusted. The copy at "
            f"{part} ({entry.repo}@{entry.revision}) has tree sha256 {digest} and {count} files: check them and "
            f"pin both in the manifest (the copy is kept), then run again."
        )
    if digest != entry.sha256 or (entry.files is not None and count != entry.files):
        shutil.rmtree(part)
        raise ChecksumError(
            f"{entry.name}: fetched tree has sha256 {digest} ({count} files) but {manifest} expects "
            f"{entry.sha256} ({entry.files} files); the copy was deleted"
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(part, out_dir)
    print(f"{entry.name}: {entry.repo}@{entry.revision}, {count} files verified -> {out_dir}")
    return out_dir


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class _Retry(Exception):
    """A transient failure: worth another attempt on the same URL."""


def _fetch(url: str, part: Path, entry: ManifestEntry, session: requests.Session) -> None:
    """One attempt: append to ``part`` from where it stops (HTTP Range), until the server is done."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with session.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
            if response.status_code == 416 and offset:
                return  # nothing left to send: the part is complete (or too long; verification decides)
            if response.status_code in RETRY_STATUS:
                raise _Retry(f"HTTP {response.status_code}")
            response.raise_for_status()
            resumed = response.status_code == 206
            if offset and not resumed:
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else entry.size
            with (
                part.open("ab" if resumed else "wb") as handle,
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=entry.name) as bar,
            ):
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    bar.update(len(chunk))
            if total is not None and part.stat().st_size < total:
                raise _Retry(f"connection closed at byte {part.stat().st_size} of {total}")
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
        raise _Retry(f"{type(err).__name__}: {err}") from None


def _verify(part: Path, entry: ManifestEntry, manifest: Path) -> None:
    size = part.stat().st_size
    digest = sha256_file(part)
    if entry.sha256 is None:
        print(f"{entry.name}: sha256 {digest} size {size} (not pinned in {manifest})")
        raise ChecksumError(
            f"{manifest}: entry {entry.name!r} has no sha256, so the download cannot be trusted. "
            f"The file downloaded to {part} has sha256 {digest} and size {size}: check it against "
            f"the publisher and pin both in the manifest (kept for resuming), then run again."
        )
    if digest != entry.sha256 or (entry.size is not None and size != entry.size):
        part.unlink()
        raise ChecksumError(
            f"{entry.name}: downloaded file has sha256 {digest} (size {size}) but {manifest} expects "
            f"{entry.sha256} (size {entry.size}); the corrupt file was deleted"
        )


def _candidate_urls(entry: ManifestEntry, mirrors: list[str] | None) -> list[str]:
    return [entry.url] + [f"{mirror.rstrip('/')}/{entry.file_name}" for mirror in mirrors or []]


def download_file(
    entry: ManifestEntry,
    out_dir: Path,
    manifest: Path,
    mirrors: list[str] | None = None,
    retries: int = 5,
    backoff: float = 1.0,
) -> Path:
    """Download and verify one entry to ``out_dir / file_name``; an existing verified file is kept."""
    final = out_dir / entry.file_name
    if final.exists() and entry.sha256 is not None and sha256_file(final) == entry.sha256:
        return final
    out_dir.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    failures, corrupt = [], False
    with requests.Session() as session:
        for url in _candidate_urls(entry, mirrors):
            for attempt in range(retries):
                try:
                    _fetch(url, part, entry, session)
                except _Retry as err:
                    failures.append(f"{url} attempt {attempt + 1}: {err}")
                    if attempt + 1 < retries:
                        time.sleep(backoff * 2**attempt)
                    continue
                except requests.HTTPError as err:
                    failures.append(f"{url}: {err}")
                    break
                try:
                    _verify(part, entry, manifest)
                except ChecksumError as err:
                    if entry.sha256 is None:
                        raise
                    failures.append(f"{url}: {err}")
                    corrupt = True
                    break
                os.replace(part, final)
                return final
    tried = "\n  ".join(failures)
    raise (ChecksumError if corrupt else DownloadError)(f"{entry.name}: no verified download after trying:\n  {tried}")


def _member_target(dest: Path, info: zipfile.ZipInfo, archive: Path) -> Path:
    """Where a zip member goes; refuses absolute paths, '..', drive letters and symlinks."""
    name = PurePosixPath(info.filename.replace("\\", "/"))
    mode = info.external_attr >> 16
    if name.is_absolute() or ".." in name.parts or ":" in info.filename or stat.S_ISLNK(mode):
        raise ValueError(f"{archive}: member {info.filename!r} would escape {dest}; refusing to extract")
    target = (dest / name).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise ValueError(f"{archive}: member {info.filename!r} resolves outside {dest}; refusing to extract")
    return target


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip into ``dest``: every member checked first, each file written atomically.

    A stamp ``.<archive>.extracted`` written last makes a finished extraction skip next time and an
    interrupted one start again.
    """
    stamp = dest / f".{archive.name}.extracted"
    digest = sha256_file(archive)
    if stamp.exists() and stamp.read_text(encoding="utf-8").strip() == digest:
        return
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        members = [(info, _member_target(dest, info, archive)) for info in zf.infolist()]
        for info, target in tqdm(members, desc=f"extract {archive.name}", unit="file"):
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with atomic_path(target) as tmp, zf.open(info) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    atomic_write_text(stamp, digest + "\n")


def download_manifest(
    manifest: Path,
    out_dir: Path,
    names: list[str] | None = None,
    mirrors: list[str] | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    extract: bool = True,
) -> list[Path]:
    """Download (and extract) the manifest entries named in ``names`` (all when ``None``).

    ``mirrors`` are alternative base URLs tried in order after the entry's own URL, each with
    ``retries`` attempts and backoff ``backoff * 2**attempt`` seconds. Returns the verified files.
    Zips are extracted to ``out_dir / extract_to`` when ``extract`` and the entry names a target.
    """
    manifest, out_dir = Path(manifest), Path(out_dir)
    entries = read_manifest(manifest)
    known = [e.name for e in entries]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ValueError(f"{manifest}: no entries named {unknown}; available: {', '.join(known)}")
    paths = []
    for entry in entries:
        if names is not None and entry.name not in names:
            continue
        path = download_file(entry, out_dir, manifest, mirrors, retries, backoff)
        if extract and entry.extract_to is not None:
            safe_extract(path, out_dir / entry.extract_to)
        paths.append(path)
        print(f"{entry.name}: {path}")
    return paths
