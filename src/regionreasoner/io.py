"""Atomic file output, and input readers that refuse a bad file in one line.

Every artifact of the pipeline is written to a temporary name in the destination directory and
renamed into place only when complete, so a killed job never leaves a half file that Snakemake or
DVC would mistake for a finished output. The readers raise ``InputError`` whose message starts with
the file (and line) and says what to do, so every command reports a bad input the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


class InputError(ValueError):
    """An input is missing or malformed; the message starts with the file and says what to do."""


class MissingInput(InputError, FileNotFoundError):
    """An input that does not exist: still a FileNotFoundError for code that tells missing from malformed."""


def missing(path: str | os.PathLike[str]) -> MissingInput:
    """The one message for an input file that is not there (usually an upstream step not yet run)."""
    return MissingInput(f"{path}: no such file; check the path, or build it first (snakemake {path})")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path``, on error it is removed."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 1) -> None:
    """Write ``obj`` as deterministic JSON (sorted keys) atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def atomic_write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON lines (sorted keys) atomically."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


TURN_KEYS = ("image_path", "problem", "solution")  # a training turn (build-train) as its readers use it


def read_text(path: str | os.PathLike[str], allow_empty: bool = False) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or binary (or unless allowed, empty) file raises InputError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise missing(path) from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a file; check the path") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (a binary file?); check that the path names the right file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror}); check its permissions") from None
    if not allow_empty and not text.strip():
        raise InputError(f"{path}: is empty; rerun the step that writes it")
    return text


def read_json(path: str | os.PathLike[str], fix: str = "truncated? rewrite or rebuild it") -> Any:
    """Parse a JSON file; a malformed one raises InputError naming the file, line and column, and
    ``fix``: what to do about it where the file came from (a download, a build step)."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: line {err.lineno} column {err.colno}: not valid JSON ({err.msg}; {fix})") from None


def read_records(path: str | os.PathLike[str], what: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """A JSON file holding a list of objects, each with ``keys`` (a bench, a refer file...).

    The check is shallow on purpose: it turns the common wrong-file mistakes (a metrics file passed
    as a bench, a truncated list) into one line instead of a KeyError deep inside a command."""
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: holds a JSON {type(data).__name__}, expected a list of {what}s; check the path")
    for index, record in enumerate(data):
        missing = [k for k in keys if not isinstance(record, dict) or k not in record]
        if missing:
            raise InputError(
                f"{path}: {what} {index} has no {', '.join(map(repr, missing))}; "
                f"is this a {what} file? check the path or rebuild it"
            )
    return data


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file; a malformed one raises InputError naming the file and line."""
    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InputError(f"{path}: {where}not valid YAML ({problem}); fix the indentation or quoting there") from None


def read_jsonl(
    path: str | os.PathLike[str], keys: tuple[str, ...] = (), allow_empty: bool = True
) -> list[dict[str, Any]]:
    """Read JSON lines (one object each, holding ``keys``); a bad line raises InputError naming the file and line.

    An empty file is a valid empty list (a model that predicted nothing) unless ``allow_empty`` is False
    (training turns: nothing to train on is a mistake upstream)."""
    rows = []
    for number, line in enumerate(read_text(path, allow_empty=True).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path}: line {number} is not valid JSON ({err.msg}; truncated? rerun the step that writes it)"
            ) from None
        if not isinstance(row, dict):
            raise InputError(
                f"{path}: line {number} holds a JSON {type(row).__name__}, expected an object per line; "
                "is this a JSON lines file?"
            )
        missing = [k for k in keys if k not in row]
        if missing:
            raise InputError(
                f"{path}: line {number} has no {', '.join(map(repr, missing))}; "
                "is this the right file? check the path or rebuild it"
            )
        rows.append(row)
    if not rows and not allow_empty:
        raise InputError(f"{path}: is empty (no JSON lines); rerun the step that writes it")
    return rows
