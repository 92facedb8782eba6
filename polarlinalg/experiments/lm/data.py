"""The corpus: the Python standard library's source, byte-level, split by file.

The benchmark trains on the ``.py`` files of the running interpreter's
standard library (``sysconfig.get_paths()["stdlib"]``, third-party
``site-packages`` excluded), so every machine with Python has it and nothing is
downloaded.  Tokens are bytes (vocabulary 256).

**Split.**  A file goes to validation when the first two bytes of the SHA-256
of its path relative to the library root, read as a big-endian integer, are
below ``val_fraction · 65536``; every other file is training data.  The rule
depends on nothing but the relative path, so it is the same on every machine
and run, and a file added or removed by another Python release does not move
any other file across the split.

**Cache.**  :func:`build_corpus` concatenates each side's files (sorted by
relative path, each followed by a NUL byte, which never occurs in source
text) into ``train.bin`` and ``val.bin`` (raw ``uint8``) with a
``meta.json`` describing them, once per (library root, Python version,
fraction) in a cache directory.  :class:`TokenWindows` memory-maps a ``.bin``
file and cuts ``(input, target)`` windows from it; nothing is loaded into
memory beyond the windows of a batch.

This module uses NumPy only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "VOCAB_SIZE",
    "Corpus",
    "TokenWindows",
    "build_corpus",
    "default_cache_dir",
    "is_validation",
    "list_sources",
    "split_sources",
    "stdlib_root",
]

VOCAB_SIZE = 256
SEPARATOR = b"\x00"
_FORMAT_VERSION = 1
_EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})


def stdlib_root() -> Path:
    """Return the directory of the running interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def default_cache_dir() -> Path:
    """Return ``$POLARLINALG_CACHE/lm`` or ``~/.cache/polarlinalg/lm``."""
    base = os.environ.get("POLARLINALG_CACHE")
    if base:
        return Path(base) / "lm"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "polarlinalg" / "lm"


def list_sources(root: str | os.PathLike[str]) -> list[str]:
    """Return the ``.py`` files under ``root`` as sorted POSIX paths relative to it.

    Directories named ``site-packages``, ``dist-packages`` or ``__pycache__``
    are skipped (third-party code and bytecode are not the standard library).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root must be an existing directory; got {str(root)!r}")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDED_DIRS)
        rel_dir = Path(dirpath).relative_to(root)
        found.extend((rel_dir / f).as_posix() for f in filenames if f.endswith(".py"))
    return sorted(found)


def is_validation(relative_path: str, val_fraction: float) -> bool:
    """Return whether the file at ``relative_path`` belongs to the validation split."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:2], "big") < round(val_fraction * 65536)


def split_sources(paths: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Split relative paths into ``(train, validation)`` by :func:`is_validation`."""
    _check_fraction(val_fraction)
    train, val = [], []
    for path in paths:
        (val if is_validation(path, val_fraction) else train).append(path)
    return train, val


def _check_fraction(val_fraction: float) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1); got {val_fraction!r}")


@dataclass(frozen=True)
class Corpus:
    """The paths of a built corpus and its description (``meta.json``)."""

    directory: Path
    meta: dict[str, Any]

    @property
    def train_path(self) -> Path:
        """The training bytes."""
        return self.directory / "train.bin"

    @property
    def val_path(self) -> Path:
        """The validation bytes."""
        return self.directory / "val.bin"


def _write_side(root: Path, paths: list[str], target: Path) -> tuple[int, str]:
    """Concatenate ``paths`` into ``target``; return the byte count and a SHA-256."""
    digest = hashlib.sha256()
    total = 0
    # a name of this process's own: two processes building the cache at once
    # (parallel runs, the sweep's workers) each write their copy and rename it
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        for rel in paths:
            data = (root / rel).read_bytes() + SEPARATOR
            out.write(data)
            digest.update(data)
            total += len(data)
    tmp.replace(target)
    return total, digest.hexdigest()


def build_corpus(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.05,
    rebuild: bool = False,
) -> Corpus:
    """Build (once) and return the byte corpus of the standard library.

    Parameters
    ----------
    cache_dir : path, optional
        Where corpora are kept (default :func:`default_cache_dir`); each
        (root, Python version, fraction) gets a sub-directory.
    root : path, optional
        The source tree (default :func:`stdlib_root`).
    val_fraction : float, default 0.05
        The expected share of files in the validation split.
    rebuild : bool, default False
        Rebuild even when a complete corpus is cached.

    Returns
    -------
    Corpus
        With ``meta`` holding the root, Python version, split rule, file and
        byte counts and SHA-256 digests of both sides.
    """
    _check_fraction(val_fraction)
    root = stdlib_root() if root is None else Path(root)
    paths = list_sources(root)
    train, val = split_sources(paths, val_fraction)
    if not train or not val:
        raise ValueError(
            f"the split of {len(paths)} source files under {str(root)!r} leaves "
            f"{len(train)} for training and {len(val)} for validation; both need at least one"
        )
    version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    key = hashlib.sha256(
        json.dumps([_FORMAT_VERSION, str(root.resolve()), version, val_fraction, paths]).encode()
    ).hexdigest()[:16]
    directory = Path(cache_dir if cache_dir is not None else default_cache_dir()) / key
    meta_path = directory / "meta.json"
    if meta_path.exists() and not rebuild:
        return Corpus(directory, json.loads(meta_path.read_text(encoding="utf-8")))
    directory.mkdir(parents=True, exist_ok=True)
    train_bytes, train_sha = _write_side(root, train, directory / "train.bin")
    val_bytes, val_sha = _write_side(root, val, directory / "val.bin")
    meta = {
        "format": _FORMAT_VERSION,
        "root": str(root),
        "python": version,
        "split": "sha256(relative path)[:2] < val_fraction * 65536 -> validation",
        "val_fraction": val_fraction,
        "separator": "NUL byte after each file",
        "train_files": len(train),
        "val_files": len(val),
        "train_bytes": train_bytes,
        "val_bytes": val_bytes,
        "train_sha256": train_sha,
        "val_sha256": val_sha,
        "val_file_list": val,
    }
    tmp = meta_path.with_name(f"meta.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    tmp.replace(meta_path)  # meta.json last: its presence means the corpus is complete
    return Corpus(directory, meta)


class TokenWindows:
    """Token windows over a memory-mapped ``uint8`` file.

    Parameters
    ----------
    path : path
        A ``.bin`` file of :func:`build_corpus`.
    seq_len : int
        Tokens per window; a window of ``seq_len + 1`` bytes gives the input
        (first ``seq_len``) and the next-byte target (last ``seq_len``).
    """

    def __init__(self, path: str | os.PathLike[str], seq_len: int) -> None:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len must be a positive int; got {seq_len!r}")
        self.path = Path(path)
        self.seq_len = seq_len
        self.tokens = np.memmap(self.path, dtype=np.uint8, mode="r")
        if self.tokens.shape[0] < seq_len + 1:
            raise ValueError(
                f"{str(self.path)!r} holds {self.tokens.shape[0]} tokens, fewer than "
                f"seq_len + 1 = {seq_len + 1}"
            )

    def __len__(self) -> int:
        """Return the number of distinct window start positions."""
        return int(self.tokens.shape[0]) - self.seq_len

    def windows(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(inputs, targets)``, int64 arrays of shape ``(len(starts), seq_len)``."""
        offsets = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(self.seq_len + 1)
        block = self.tokens[offsets].astype(np.int64)
        return block[:, :-1], block[:, 1:]

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return a batch of windows at uniformly random start positions."""
        return self.windows(rng.integers(0, len(self), size=batch_size))

    def evaluation_batches(
        self, batch_size: int, n_batches: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``n_batches`` fixed batches of windows spread evenly over the file.

        The same windows on every call, so validation losses are comparable
        across steps, arms and seeds.
        """
        count = batch_size * n_batches
        starts = np.linspace(0, len(self) - 1, num=count).astype(np.int64)
        for i in range(n_batches):
            yield self.windows(starts[i * batch_size : (i + 1) * batch_size])
