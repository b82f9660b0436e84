"""Broken word-vector files: each says what is wrong and what to do (issue 13)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from tlwidgets import embeddings as E


def _row(word: bytes, dim: int, value: float = 0.5, sep: bytes = b" ") -> bytes:
    return word + sep + sep.join(b"%.3f" % (value + i / 100) for i in range(dim)) + b"\n"


def _small_kv(n: int = 20, dim: int = 5) -> KeyedVectors:
    kv = KeyedVectors(dim)
    rng = np.random.default_rng(0)
    kv.add_vectors([f"w{i}" for i in range(n)], rng.normal(size=(n, dim)).astype(np.float32))
    return kv


def test_a_header_promising_fewer_rows_than_the_file_holds(tmp_path):
    text = tmp_path / "few.vec"
    text.write_bytes(b"3 4\n" + b"".join(_row(b"w%d" % i, 4) for i in range(5)))
    with pytest.raises(ValueError, match=r"promises 3 vectors but the file holds 5.*limit=3"):
        E.load_vectors(text)
    assert len(E.load_vectors(text, limit=3)) == 3  # asked for: no error
    binary = tmp_path / "few.bin"
    _small_kv(20).save_word2vec_format(str(binary), binary=True)
    data = binary.read_bytes()
    binary.write_bytes(data.replace(b"20 5\n", b"10 5\n", 1))
    with pytest.raises(ValueError, match=r"promises 10 vectors but the file holds more"):
        E.load_vectors(binary)
    assert len(E.load_vectors(binary, limit=10)) == 10


def test_a_wrong_dimension_in_the_header_is_named_as_such(tmp_path):
    binary = tmp_path / "dim.bin"
    _small_kv(20, dim=5).save_word2vec_format(str(binary), binary=True)
    binary.write_bytes(binary.read_bytes().replace(b"20 5\n", b"20 6\n", 1))
    with pytest.raises(ValueError, match=r"header says 6 dimensions.*read as 5 dimensions") as e:
        E.load_vectors(binary)
    assert "damaged" not in str(e.value)
    text = tmp_path / "dim.vec"
    text.write_bytes(b"2 6\n" + _row(b"a", 5) + _row(b"b", 5))
    with pytest.raises(ValueError, match=r"header says 6 dimensions but line 2 holds 5 numbers"):
        E.load_vectors(text)


@pytest.mark.parametrize("binary", [False, True])
def test_a_huge_count_is_a_clear_error_not_a_memory_error(tmp_path, binary):
    path = tmp_path / ("huge.bin" if binary else "huge.vec")
    _small_kv(20, dim=300).save_word2vec_format(str(path), binary=binary)
    path.write_bytes(path.read_bytes().replace(b"20 300\n", b"999999999999 300\n", 1))
    with pytest.raises(ValueError, match=r"promises 999,999,999,999 vectors.*holds at most"):
        E.load_vectors(path)


def test_compressed_files_get_a_hint(tmp_path):
    path = tmp_path / "glove.txt.gz"
    path.write_bytes(gzip.compress(_row(b"the", 4) + _row(b"cat", 4)))
    with pytest.raises(ValueError, match=r"gzip-compressed.*gunzip -k glove.txt.gz"):
        E.load_vectors(path)


@pytest.mark.parametrize("header", [b"", b"2 4\n"])
def test_a_utf8_bom_is_not_part_of_the_first_word(tmp_path, header):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + header + _row(b"the", 4) + _row(b"cat", 4))
    kv = E.load_vectors(path)
    assert kv.index_to_key == ["the", "cat"] and kv.decode_errors == 0


def test_nan_and_infinite_values_are_warned_about(tmp_path):
    path = tmp_path / "nan.txt"
    path.write_bytes(_row(b"the", 3) + b"cat nan 0.1 0.2\n" + b"dog 0.1 inf 0.2\n")
    with pytest.warns(UserWarning, match=r"2 vectors hold NaN or infinite values.*'cat'"):
        E.load_vectors(path)


def test_tab_separated_files_get_a_hint(tmp_path):
    path = tmp_path / "tabs.tsv"
    path.write_bytes(_row(b"the", 3, sep=b"\t") + _row(b"cat", 3, sep=b"\t"))
    with pytest.raises(ValueError, match=r"tabs.*tr '\\t' ' '"):
        E.load_vectors(path)


@pytest.mark.parametrize("keep", [0.001, 0.3, 0.6])
def test_a_truncated_fasttext_bin_names_the_file_and_says_download_again(tmp_path, keep):
    data = Path(datapath("lee_fasttext_new.bin")).read_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(data[: max(8, int(len(data) * keep))])
    with pytest.raises(ValueError, match=r"cut.bin is a damaged or truncated fastText .bin.*"
                                         "Download it again"):
        E.load_vectors(path)


def test_a_broken_package_folder_names_the_broken_file(tmp_path):
    np.save(tmp_path / "vectors.npy", np.ones((2, 3), np.float32))
    (tmp_path / "words.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(ValueError, match=r"words.parquet is not a readable parquet word index"):
        E.load_vectors(tmp_path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"word": ["a", "b"]}), tmp_path / "words.parquet")
    (tmp_path / "vectors.npy").write_bytes(b"\x93NUMPY junk")
    with pytest.raises(ValueError, match=r"vectors.npy is not a readable .npy matrix"):
        E.load_vectors(tmp_path)
