"""Downloader against a local HTTP server: Range resume, bounded retries, checksums, safe unzip."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from regionreasoner.data.download import ChecksumError, DownloadError, download_manifest, safe_extract
from tests.conftest import REPO

PAYLOAD = bytes(range(256)) * 1600  # 409,600 bytes: several 64 KiB chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves PAYLOAD under /<behaviour>/<file>; behaviours: good, drop, corrupt, flaky, zip."""

    hits: dict[str, list[str | None]] = {}
    files: dict[str, bytes] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        behaviour, _, name = self.path.strip("/").partition("/")
        seen = self.hits.setdefault(behaviour, [])
        seen.append(self.headers.get("Range"))
        body = self.files.get(name, PAYLOAD)
        if behaviour == "missing":
            self.send_error(404)
            return
        if behaviour == "flaky" and len(seen) <= 2:
            self.send_error(500)
            return
        if behaviour == "corrupt":
            body = body[:-1] + b"X"
        start = int(seen[-1].removeprefix("bytes=").rstrip("-")) if seen[-1] else 0
        if start >= len(body):
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if behaviour == "drop" and len(seen) == 1:
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.hits, _Handler.files = {}, {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _manifest(
    tmp_path: Path, url: str, sha256: str | None = SHA, size: int | None = len(PAYLOAD), extract_to: str | None = None
) -> Path:
    path = tmp_path / "manifest.yaml"
    entry = {"name": "data", "url": url, "sha256": sha256, "size": size, "extract_to": extract_to}
    path.write_text(yaml.safe_dump({"files": [entry]}))
    return path


def test_dropped_connection_resumes_with_range(server: str, tmp_path: Path) -> None:
    (path,) = download_manifest(_manifest(tmp_path, f"{server}/drop/data.bin"), tmp_path / "out", backoff=0)
    assert path == tmp_path / "out" / "data.bin" and path.read_bytes() == PAYLOAD
    first, second = _Handler.hits["drop"]
    assert first is None and second.startswith("bytes=")
    assert 0 < int(second.removeprefix("bytes=").rstrip("-")) <= len(PAYLOAD) // 3, "resumed, not restarted"
    assert not (tmp_path / "out" / "data.bin.part").exists()


def test_corrupted_bytes_raise_checksum_error_and_leave_no_file(server: str, tmp_path: Path) -> None:
    with pytest.raises(ChecksumError, match=f"expects {SHA}"):
        download_manifest(_manifest(tmp_path, f"{server}/corrupt/data.bin"), tmp_path / "out", backoff=0)
    assert list((tmp_path / "out").iterdir()) == []


def test_server_errors_are_retried_with_backoff_until_success(server: str, tmp_path: Path) -> None:
    (path,) = download_manifest(
        _manifest(tmp_path, f"{server}/flaky/data.bin"), tmp_path / "out", retries=3, backoff=0.01
    )
    assert path.read_bytes() == PAYLOAD and len(_Handler.hits["flaky"]) == 3


def test_retries_are_bounded(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="attempt 2: HTTP 500"):
        download_manifest(_manifest(tmp_path, f"{server}/flaky/data.bin"), tmp_path / "out", retries=2, backoff=0)
    assert len(_Handler.hits["flaky"]) == 2 and not (tmp_path / "out" / "data.bin").exists()


def test_mirrors_are_tried_in_order(server: str, tmp_path: Path) -> None:
    mirrors = [f"{server}/corrupt", f"{server}/good/"]
    (path,) = download_manifest(
        _manifest(tmp_path, f"{server}/missing/data.bin"), tmp_path / "out", mirrors=mirrors, backoff=0
    )
    assert path.read_bytes() == PAYLOAD
    assert [len(_Handler.hits[k]) for k in ("missing", "corrupt", "good")] == [1, 1, 1]


def test_unpinned_checksum_is_printed_and_refused(server: str, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, f"{server}/good/data.bin", sha256=None, size=None)
    with pytest.raises(ChecksumError, match=f"has no sha256.*sha256 {SHA} and size {len(PAYLOAD)}"):
        download_manifest(manifest, tmp_path / "out", backoff=0)
    assert not (tmp_path / "out" / "data.bin").exists()
    (tmp_path / "manifest.yaml").unlink()
    manifest = _manifest(tmp_path, f"{server}/good/data.bin")  # pinned: the kept part is verified, not re-sent
    (path,) = download_manifest(manifest, tmp_path / "out", backoff=0)
    assert path.read_bytes() == PAYLOAD and _Handler.hits["good"] == [None, f"bytes={len(PAYLOAD)}-"]


def test_verified_file_is_not_downloaded_again(server: str, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, f"{server}/good/data.bin")
    download_manifest(manifest, tmp_path / "out", backoff=0)
    download_manifest(manifest, tmp_path / "out", backoff=0)
    assert len(_Handler.hits["good"]) == 1


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_is_extracted_to_extract_to(server: str, tmp_path: Path) -> None:
    archive = _zip({"refcoco/refs(unc).p": b"refs", "refcoco/instances.json": b"{}"})
    _Handler.files["refcoco.zip"] = archive
    manifest = _manifest(
        tmp_path, f"{server}/good/refcoco.zip", hashlib.sha256(archive).hexdigest(), len(archive), "refer"
    )
    download_manifest(manifest, tmp_path / "out", backoff=0)
    assert (tmp_path / "out" / "refer" / "refcoco" / "refs(unc).p").read_bytes() == b"refs"


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_zip_members_escaping_the_target_are_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip({"ok.txt": b"ok", member: b"evil"}))
    with pytest.raises(ValueError, match="refusing to extract"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "dest" / "ok.txt").exists()


def test_unknown_entry_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no entries named \\['nope'\\]"):
        download_manifest(_manifest(tmp_path, "http://127.0.0.1:9/x.bin"), tmp_path / "out", names=["nope"])


def test_shipped_manifest_lists_the_paper_data_and_invents_no_checksum() -> None:
    from regionreasoner.data.download import read_manifest

    manifest = REPO / "src" / "regionreasoner" / "data" / "manifest.yaml"
    entries = {e.name: e for e in read_manifest(manifest)}
    assert set(entries) == {"coco_train2014", "coco_annotations_trainval2014", "refcoco", "refcoco+", "refcocog"}
    assert entries["coco_train2014"].url == "http://images.cocodataset.org/zips/train2014.zip"
    # nothing is published for the refer zips: left unpinned, so the downloader asks the user to pin them
    assert all(entries[n].sha256 is None and entries[n].size is None for n in ("refcoco", "refcoco+", "refcocog"))
    # every pinned value names its published source, one of those the header lists
    text = manifest.read_text()
    sources = set(re.findall(r"^#\s+(\[\w+\])", text, re.M))
    pinned = [line for line in text.splitlines() if re.match(r"\s+(sha256|size): (?!null)", line)]
    assert sources and len(pinned) == 4
    for line in pinned:
        cited = set(re.findall(r"\[\w+\]", line.partition("#")[2]))
        assert cited and cited <= sources, line
