"""The corpus, its file-level split and the memory-mapped token windows."""

from __future__ import annotations

import numpy as np
import pytest

from polarlinalg.experiments.lm.data import (
    SEPARATOR,
    TokenWindows,
    build_corpus,
    is_validation,
    list_sources,
    split_sources,
    stdlib_root,
)


def _tree(root, names):
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# file {i}: {name}\nx = {i}\n" * (i + 3), encoding="utf-8")


NAMES = [f"pkg{i // 10}/mod{i}.py" for i in range(60)]


def test_split_is_fixed_by_relative_path():
    # pinned: the rule is sha256(relative path)[:2] < fraction * 65536
    assert is_validation("chunk.py", 0.05)
    assert is_validation("copyreg.py", 0.05)
    assert not is_validation("os.py", 0.05)
    assert not is_validation("typing.py", 0.05)
    train, val = split_sources(NAMES, 0.2)
    assert sorted(train + val) == sorted(NAMES)
    assert not set(train) & set(val)
    # adding or removing other files moves no file across the split
    more_train, more_val = split_sources([*NAMES, "extra/a.py", "extra/b.py"], 0.2)
    assert set(val) <= set(more_val) and set(train) <= set(more_train)
    assert split_sources(NAMES[:30], 0.2)[1] == [n for n in val if n in NAMES[:30]]


def test_split_of_this_interpreters_stdlib():
    paths = list_sources(stdlib_root())
    assert "os.py" in paths and not any("site-packages" in p for p in paths)
    train, val = split_sources(paths, 0.05)
    assert train and val
    assert split_sources(paths, 0.05) == (train, val)
    assert 0.02 < len(val) / len(paths) < 0.09


def test_build_corpus_and_cache(tmp_path):
    root = tmp_path / "src"
    _tree(root, NAMES)
    (root / "site-packages").mkdir()
    (root / "site-packages" / "third_party.py").write_text("no = 1\n")
    (root / "notes.txt").write_text("not python\n")
    corpus = build_corpus(tmp_path / "cache", root=root, val_fraction=0.2)
    train, val = split_sources(NAMES, 0.2)
    assert corpus.meta["train_files"] == len(train) and corpus.meta["val_files"] == len(val)
    expected_val = b"".join((root / n).read_bytes() + SEPARATOR for n in sorted(val))
    assert corpus.val_path.read_bytes() == expected_val
    assert corpus.meta["train_bytes"] == corpus.train_path.stat().st_size
    assert b"third_party" not in corpus.train_path.read_bytes() + expected_val
    stamp = corpus.train_path.stat().st_mtime_ns
    again = build_corpus(tmp_path / "cache", root=root, val_fraction=0.2)
    assert again.directory == corpus.directory and again.meta == corpus.meta
    assert corpus.train_path.stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_build_corpus_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="val_fraction"):
        build_corpus(tmp_path, root=tmp_path, val_fraction=1.5)
    with pytest.raises(ValueError, match="root"):
        build_corpus(tmp_path, root=tmp_path / "missing")
    (tmp_path / "only.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="both need at least one"):
        build_corpus(tmp_path / "cache", root=tmp_path)


def test_token_windows(tmp_path):
    path = tmp_path / "bytes.bin"
    data = np.arange(300, dtype=np.int64) % 256
    data.astype(np.uint8).tofile(path)
    windows = TokenWindows(path, seq_len=16)
    assert len(windows) == 300 - 16
    x, y = windows.sample(5, np.random.default_rng(0))
    assert x.shape == y.shape == (5, 16) and x.dtype == np.int64
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # targets are the next bytes
    np.testing.assert_array_equal((x[:, :1] + np.arange(16)) % 256, x)
    x2, _ = windows.sample(5, np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)
    first = [b[0] for b in windows.evaluation_batches(4, 3)]
    second = [b[0] for b in windows.evaluation_batches(4, 3)]
    assert len(first) == 3 and all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert first[-1][-1, -1] == data[-2]  # the last window reaches the end of the file
    with pytest.raises(ValueError, match="seq_len"):
        TokenWindows(path, seq_len=0)
    with pytest.raises(ValueError, match="fewer than"):
        TokenWindows(path, seq_len=400)
