"""The OOV report tells the truth (issue 15): language, encodings, binary files, paths,
HTML, hidden folders, coverage quality, streaming, French elisions."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from tlwidgets import oov, textfiles
from tlwidgets.language import guess_language, stop_words, vocabulary_language


@pytest.fixture(scope="module")
def glove_small(shared_assets):
    from tlwidgets.embeddings import load_vectors

    return load_vectors("glove-6b-50d-top20k")


@pytest.fixture(scope="module")
def livre_iv(shared_assets) -> list[str]:
    path = shared_assets / "text" / "fr_legal" / "code_de_commerce.jsonl"
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return [r["text"] for r in rows if r["book"] == "IV"]


FRENCH = ("La décision de l'Autorité de la concurrence est notifiée aux entreprises dans un "
          "délai d'un mois. Lorsqu'il s'agit d'une pratique anticoncurrentielle, le ministre "
          "chargé de l'économie peut saisir l'Autorité, qui statue aujourd'hui sur le fond.\n")


def test_english_vectors_on_french_text_say_so_first(glove_small, livre_iv):
    fr = oov.oov_report(livre_iv, glove_small, name="Livre IV")
    en = oov.oov_report(oov.python_reference(), glove_small)
    assert (fr.language, fr.vectors_language) == ("fr", "en")
    assert fr.language_mismatch and fr.warnings[0].startswith("Language mismatch")
    assert "French" in fr.warnings[0] and "English" in fr.warnings[0]
    assert f"{fr.top1000_coverage:.1%}" in fr.warnings[0]
    # the signal itself: the vectors' top 1,000 words cover little of French, much of English
    top = set(glove_small.index_to_key[:1000])
    counts = Counter(t for text in livre_iv for t in oov.tokenize(text, language="fr"))
    assert fr.top1000_coverage == pytest.approx(
        sum(c for w, c in counts.items() if w in top) / sum(counts.values()))
    assert fr.top1000_coverage < 0.2 < 0.45 < en.top1000_coverage
    assert en.language == "en" and not en.language_mismatch


def test_content_words_use_the_texts_own_stop_words(glove_small, livre_iv):
    r = oov.oov_report(livre_iv, glove_small)
    french_stop = stop_words("fr")
    assert {"dans", "ou", "une", "qui"} <= french_stop
    counts = Counter(t for text in livre_iv for t in oov.tokenize(text, language="fr"))
    assert r.content_tokens == sum(c for w, c in counts.items() if w not in french_stop)


def test_language_guesses(glove_small):
    assert guess_language(Counter(oov.tokenize(FRENCH * 3, language="fr"))).language == "fr"
    assert guess_language(Counter(["word"] * 10)).language is None  # too little to tell
    assert vocabulary_language(glove_small.index_to_key).language == "en"
    assert vocabulary_language(["the", "a"]).language is None


def test_latin1_text_is_decoded_as_such_not_split_into_covered_pieces(tmp_path, livre_iv):
    text = "\n".join(livre_iv[:80])
    good = tmp_path / "utf8.txt"
    good.write_text(text, encoding="utf-8")
    legacy = tmp_path / "cp1252.txt"
    legacy.write_bytes(text.encode("cp1252", errors="replace"))
    vocab = sorted(set(oov.tokenize(text, language="fr")))
    a, b = oov.oov_report(good, vocab), oov.oov_report(legacy, vocab)
    assert b.decode_errors == 0 and b.encodings in ({"cp1252": 1}, {"iso8859-1": 1},
                                                    {"latin-1": 1})
    assert b.tokens == a.tokens and b.oov_counts == a.oov_counts
    assert any("decoded as" in w for w in b.warnings)


def test_an_undecodable_file_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    path = tmp_path / "odd.txt"
    path.write_bytes(("caf\u00e9 " * 40).encode("cp1252"))

    class NoMatch:
        def best(self):
            return None

    import charset_normalizer

    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda data: NoMatch())
    with pytest.raises(ValueError, match=r"odd.txt is not UTF-8.*Convert it to UTF-8"):
        oov.oov_report(path, ["café"])


def test_decomposed_accents_are_the_same_words(tmp_path):
    nfd = unicodedata.normalize("NFD", FRENCH)
    assert nfd != FRENCH
    vocab = sorted(set(oov.tokenize(FRENCH, language="fr")))
    (tmp_path / "nfd.txt").write_text(nfd * 50, encoding="utf-8")
    for corpus in (oov.Text(nfd * 50), tmp_path / "nfd.txt", [nfd] * 50):
        r = oov.oov_report(corpus, vocab, language="fr")
        assert r.token_coverage == 1.0 and r.covered_counts["décision"] == 50
        assert "cision" not in r.oov_counts


def test_binary_files_are_refused_and_skipped_in_folders(tmp_path):
    import gzip

    gz = tmp_path / "corpus.txt.gz"
    gz.write_bytes(gzip.compress(b"the cat sat on the mat\n" * 100))
    with pytest.raises(textfiles.BinaryFileError, match=r"gzip-compressed.*gunzip -k corpus"):
        oov.oov_report(gz, ["the"])
    exe = Path(sys.executable).resolve()
    with pytest.raises(textfiles.BinaryFileError, match="executable|binary"):
        oov.oov_report(exe, ["the"])
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("the cat sat", encoding="utf-8")
    (folder / "program").write_bytes(exe.read_bytes()[:4096])
    r = oov.oov_report(folder, ["the", "cat", "sat"])
    assert r.tokens == 3 and r.files == 1 and r.skipped == ["program (an executable (ELF), not text.)"]
    assert any("Skipped 1 binary" in w for w in r.warnings)


def test_a_str_is_never_guessed_to_be_a_path(tmp_path):
    (tmp_path / "real.txt").write_text("the cat", encoding="utf-8")
    for value in (str(tmp_path / "real.txt"), "data/contracts.txt", "some pasted text"):
        with pytest.raises(TypeError, match=r"could be text or a path.*Text\(.*Path\("):
            oov.oov_report(value, ["the"])
        with pytest.raises(TypeError, match="Text"):
            oov.read_corpus(value)
    with pytest.raises(TypeError, match="could be text or a path"):
        oov.oov_report(b"the cat", ["the"])
    assert oov.oov_report(oov.Text("data/contracts.txt"), ["data"]).tokens == 3
    assert oov.oov_report(tmp_path / "real.txt", ["the"]).tokens == 2
    with pytest.raises(FileNotFoundError):
        oov.oov_report(tmp_path / "mistyped.txt", ["the"])


HTML = ("<html><head><title>Contrat</title><style>p {color: red}</style>"
        "<script>var tracking = 1;</script></head><body><p>La cession du fonds</p>"
        "<p>est nulle &amp; non avenue.</p></body></html>")


def test_html_is_read_the_same_way_alone_and_in_a_folder(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "page.html").write_text(HTML, encoding="utf-8")
    alone = oov.oov_report(folder / "page.html", ["la"], language="fr")
    inside = oov.oov_report(folder, ["la"], language="fr")
    assert alone.oov_counts == inside.oov_counts and alone.tokens == inside.tokens == 9
    for markup in ("html", "p", "style", "color", "script", "tracking", "amp"):
        assert markup not in alone.oov_counts


def test_hidden_folders_are_skipped(tmp_path):
    (tmp_path / "doc.md").write_text("the cat", encoding="utf-8")
    git = tmp_path / ".git" / "logs"
    git.mkdir(parents=True)
    (git / "HEAD").write_text("0000000 1111111 someone <a@b> commit: junk tokens\n" * 50)
    (tmp_path / ".notes.txt").write_text("hidden words", encoding="utf-8")
    r = oov.oov_report(tmp_path, ["the", "cat"])
    assert r.tokens == 2 and r.files == 1


def test_covered_words_show_their_rank_and_rare_ones_are_flagged(shared_assets):
    from tlwidgets.embeddings import load_vectors

    glove = load_vectors("glove-6b-50d")
    text = oov.Text("The licensee shall pay hereunder the fees due hereunder. " * 12)
    r = oov.oov_report(text, glove)
    assert r.rank("hereunder") == glove.key_to_index["hereunder"] > 100_000
    assert r.rank("the") == 0 and r.rank("licensee") == glove.key_to_index["licensee"]
    assert ("hereunder", 24, glove.key_to_index["hereunder"]) in r.rare_covered
    assert "licensee" not in [w for w, _, _ in r.rare_covered]  # rank below 100,000
    assert any("hereunder" in w and "rare" in w for w in r.warnings)


def test_counts_are_built_a_block_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(textfiles, "BLOCK", 1 << 12)
    path = tmp_path / "big.txt"
    path.write_text(FRENCH * 2000, encoding="utf-8")  # ~450 KB
    seen = []
    real = oov.tokenize

    def spy(text, **kw):
        seen.append(len(text))
        return real(text, **kw)

    monkeypatch.setattr(oov, "tokenize", spy)
    r = oov.oov_report(path, ["la"], language="fr")
    assert r.tokens == 2000 * len(real(FRENCH, language="fr"))
    assert len(seen) > 50 and max(seen) <= 2 * (1 << 12)


@pytest.mark.parametrize("text, tokens", [
    ("L'entreprise", ["l'", "entreprise"]),
    ("lorsqu’il", ["lorsqu'", "il"]),
    ("aujourd'hui", ["aujourd'hui"]),
    ("aujourd’hui jusqu'à", ["aujourd'hui", "jusqu'", "à"]),
    ("conseil de prud'hommes", ["conseil", "de", "prud'hommes"]),
    ("quelqu'un d'autre qu'elle", ["quelqu'un", "d'", "autre", "qu'", "elle"]),
    ("c'est-à-dire n'a", ["c'", "est-à-dire", "n'", "a"]),
])
def test_french_elisions_split_as_french_readers_expect(text, tokens):
    assert oov.tokenize(text, language="fr") == tokens


def test_french_text_is_tokenised_in_french_automatically():
    sents = oov.sentences(oov.Text(FRENCH * 5))
    assert sents[0][:2] == ["la", "décision"] and "l'" in sents[0] and "lorsqu'" in sents[0]
