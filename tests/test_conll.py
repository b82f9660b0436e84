"""CoNLL-U and IOB2 readers: the real EWT files, and clear errors on broken ones."""

from __future__ import annotations

import pytest

from tlwidgets.conll import ConllError, align, load_ewt, read_conllu, read_iob2

CONLLU = """\
# sent_id = s1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
3.1\tknow\tknow\tVERB\tVB\t_\t_\t_\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = s2
1\tParis\tParis\tPROPN\tNNP\t_\t0\troot\t_\t_

"""

IOB2 = """\
# sent_id = s2
1\tParis\tB-LOC\t-\t-

# sent_id = s1
1\tI\tO\t-\t-
2\tdo\tO\t-\t-
3\tn't\tO\t-\t-
4\tknow\tO\t-\t-
5\t.\tO\t-\t-
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_conllu_skips_multiword_tokens_and_empty_nodes(tmp_path):
    s1, s2 = read_conllu(write(tmp_path, "a.conllu", CONLLU))
    assert s1.sent_id == "s1"
    assert s1.tokens == ("I", "do", "n't", "know", ".")
    assert s1.upos == ("PRON", "AUX", "PART", "VERB", "PUNCT")
    assert s1.ner is None
    assert s1.source.endswith("a.conllu:3")
    assert s2.tokens == ("Paris",)


def test_align_joins_by_sent_id_not_by_order(tmp_path):
    pos = read_conllu(write(tmp_path, "a.conllu", CONLLU))
    ner = read_iob2(write(tmp_path, "a.iob2", IOB2))
    assert [s.sent_id for s in ner] == ["s2", "s1"]
    joined = align(pos, ner)
    assert [s.sent_id for s in joined] == ["s1", "s2"]
    assert joined[1].ner == ("B-LOC",) and joined[1].upos == ("PROPN",)


def test_real_ewt_dev_aligns_token_for_token(shared_assets):
    dev = load_ewt("dev")
    assert len(dev) == 2001
    assert all(s.upos is not None and s.ner is not None for s in dev)
    assert all(len(s.tokens) == len(s.upos) == len(s.ner) for s in dev)
    # The UNER file lists the same sentences in another order: alignment is by id.
    uner = read_iob2(shared_assets / "text/en_ewt/uner_en_ewt-ud-dev.iob2")
    assert [s.sent_id for s in uner] != [s.sent_id for s in dev]
    assert sum(tag.startswith("B-") for s in dev for tag in s.ner) == 399 + 224 + 343


def test_real_ewt_train_has_pos_only():
    train = load_ewt("train")
    assert len(train) == 12_543
    assert all(s.ner is None and len(s.upos) == len(s.tokens) for s in train[:100])


@pytest.mark.parametrize("bad, where, says", [
    ("1\tI\tI\tPRON\n", ":1", "10 tab-separated"),
    ("1\tI\tI\tPRONOUN\tPRP\t_\t0\troot\t_\t_\n", ":1", "unknown UPOS tag 'PRONOUN'"),
    ("1\tI\tI\tPRON\tPRP\t_\t0\troot\t_\t_\n3\tgo\tgo\tVERB\tVB\t_\t1\tx\t_\t_\n", ":2",
     "out of order"),
    ("x\tI\tI\tPRON\tPRP\t_\t0\troot\t_\t_\n", ":1", "not a whole number"),
    ("# just a comment\n", "", "no sentences"),
])
def test_malformed_conllu_names_file_and_line(tmp_path, bad, where, says):
    path = write(tmp_path, "bad.conllu", "# sent_id = x\n" * ("comment" not in bad) + bad)
    with pytest.raises(ConllError) as err:
        read_conllu(path)
    line = int(where[1:]) + 1 if where else None  # +1 for the sent_id line
    assert str(path) in str(err.value) and says in str(err.value)
    if line:
        assert f"bad.conllu:{line}:" in str(err.value)


@pytest.mark.parametrize("bad, line, says", [
    ("1\tParis\n", 2, "at least 3"),
    ("1\tParis\tB-CITY\t-\t-\n", 2, "unknown tag 'B-CITY'"),
    ("1\tin\tO\t-\t-\n2\tParis\tI-LOC\t-\t-\n", 3, "does not continue a LOC entity"),
    ("1\tNew\tB-ORG\t-\t-\n2\tYork\tI-LOC\t-\t-\n", 3, "does not continue"),
])
def test_malformed_iob2_names_file_and_line(tmp_path, bad, line, says):
    path = write(tmp_path, "bad.iob2", "# sent_id = x\n" + bad)
    with pytest.raises(ConllError, match=says) as err:
        read_iob2(path)
    assert f"bad.iob2:{line}:" in str(err.value)


def test_misaligned_tokens_name_both_files(tmp_path):
    pos = read_conllu(write(tmp_path, "a.conllu", CONLLU))
    ner = read_iob2(write(tmp_path, "a.iob2", IOB2.replace("4\tknow", "4\tknew")))
    with pytest.raises(ConllError) as err:
        align(pos, ner)
    msg = str(err.value)
    assert "token 4" in msg and "'know'" in msg and "'knew'" in msg
    assert "a.conllu:3" in msg and "a.iob2:5" in msg


def test_sentence_missing_from_one_file(tmp_path):
    pos = read_conllu(write(tmp_path, "a.conllu", CONLLU))
    ner = read_iob2(write(tmp_path, "a.iob2", IOB2.split("\n\n")[1]))
    with pytest.raises(ConllError, match="'s2' has no NER annotation"):
        align(pos, ner)
    with pytest.raises(ConllError, match="have no POS annotation"):
        align(pos[:1], read_iob2(write(tmp_path, "b.iob2", IOB2)))


def test_unknown_split():
    with pytest.raises(ValueError, match="split must be"):
        load_ewt("validation")


@pytest.mark.parametrize("data, line, says", [
    ("# sent_id = x\n1\tcaf\xe9\tcaf\xe9\tNOUN\tNN\t_\t0\troot\t_\t_\n".encode("latin-1"), 2,
     "byte 0xe9 at column 6 is not UTF-8"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\x07\x00", 1, "binary file"),
])
def test_non_utf8_and_binary_files_name_file_and_line(tmp_path, data, line, says):
    path = tmp_path / "bad.conllu"
    path.write_bytes(data)
    with pytest.raises(ConllError, match=says) as err:
        read_conllu(path)
    assert f"bad.conllu:{line}:" in str(err.value)


def test_a_utf8_bom_is_not_a_comment_inside_a_sentence(tmp_path):
    path = tmp_path / "bom.conllu"
    path.write_bytes(b"\xef\xbb\xbf" + CONLLU.encode("utf-8"))
    assert [s.sent_id for s in read_conllu(path)] == ["s1", "s2"]
    iob = tmp_path / "bom.iob2"
    iob.write_bytes(b"\xef\xbb\xbf" + IOB2.encode("utf-8"))
    assert [s.sent_id for s in read_iob2(iob)] == ["s2", "s1"]
