"""Reading text from files a block at a time: encodings, binary files, HTML, hidden folders.

* **Encodings.** UTF-8 (with or without a BOM) and UTF-16 with a BOM are read as
  they are. A file that is not valid UTF-8 is looked at: if most of its non-ASCII
  bytes are valid UTF-8 it is damaged UTF-8 (the bad bytes are replaced and
  counted); otherwise it is in a legacy encoding (Latin-1, cp1252, ...) that
  ``charset-normalizer`` names, and it is decoded with that, or refused with a
  message when no encoding fits. Reading Latin-1 as UTF-8 would split
  ``d\\xe9cision`` into ``d`` and ``cision``, two words the vectors know.
* **Unicode normalisation.** Text is put in NFC, so a decomposed ``é``
  (``e`` + U+0301) is the same word as the composed one.
* **Binary files** (compressed, executables, images, anything with NUL bytes) are
  refused when named, and skipped (and listed) inside a folder.
* **HTML** files (``.html``, ``.htm``) give their text without markup, whether named
  alone or found in a folder. Hidden files and folders (``.git/``) are skipped.

Blocks end at a line break (or a space), so no word or accent is cut in two.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["HTML_SUFFIXES", "TEXT_SUFFIXES", "ReadInfo", "decode_bytes", "file_blocks",
           "folder_files", "text_blocks"]

HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
#: Files read inside a folder (a file named on its own is read whatever its suffix).
TEXT_SUFFIXES = frozenset({".txt", ".md", ".rst", ".text", ".conllu", "", *HTML_SUFFIXES})
BLOCK = 1 << 20  # characters (or bytes) handled per step
_EVIDENCE = 16  # fewest non-UTF-8 bytes from which an encoding is guessed
_SIGNATURES = {
    b"\x1f\x8b": "gzip-compressed (decompress it first: gunzip -k FILE)",
    b"PK\x03\x04": "a zip archive (unzip it first)",
    b"BZh": "bzip2-compressed (decompress it first: bunzip2 -k FILE)",
    b"\xfd7zXZ\x00": "xz-compressed (decompress it first: unxz -k FILE)",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive (extract it first)",
    b"\x7fELF": "an executable (ELF)",
    b"\xcf\xfa\xed\xfe": "an executable (Mach-O)",
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"%PDF": "a PDF document (extract its text first, e.g. pdftotext)",
    b"SQLite format 3\x00": "an SQLite database", b"\x93NUMPY": "a NumPy array",
    b"PAR1": "a Parquet file",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass
class ReadInfo:
    """What reading found: files read, their encodings, replaced bytes, files skipped."""

    files: int = 0
    decode_errors: int = 0  # undecodable byte sequences, replaced by U+FFFD
    encodings: Counter = field(default_factory=Counter)  # encoding -> files read with it
    damaged: list[str] = field(default_factory=list)  # files with undecodable bytes
    skipped: list[str] = field(default_factory=list)  # "path (why)" inside folders

    def merge(self, other: ReadInfo) -> None:
        self.files += other.files
        self.decode_errors += other.decode_errors
        self.encodings.update(other.encodings)
        self.damaged += other.damaged
        self.skipped += other.skipped


class BinaryFileError(ValueError):
    """A file that holds no text (compressed, an executable, an image...)."""


def binary_kind(head: bytes) -> str | None:
    """What binary thing ``head`` (a file's first bytes) starts, or None for text."""
    for magic, kind in _SIGNATURES.items():
        if head.startswith(magic):
            return kind
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return None
    if b"\x00" in head:
        return "binary data (it holds NUL bytes)"
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13, 27))
    if head and controls > 0.1 * len(head):
        return "binary data (control bytes)"
    return None


def _choose_encoding(where: str, sample: bytes, bad_at: int) -> tuple[str, str]:
    """(encoding, errors) for bytes that are not valid UTF-8, or a ValueError."""
    text = sample.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - sample.count("\ufffd".encode())
    good = sum(1 for ch in text if ord(ch) > 127 and ch != "\ufffd")
    if good >= bad or bad < _EVIDENCE:
        # mostly valid UTF-8 with some damage, or too few odd bytes to tell an encoding by:
        # keep UTF-8 and replace (and count) the bad bytes
        return "utf-8", "replace"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        raise ValueError(
            f"{where} is not UTF-8 (byte {sample[bad_at:bad_at + 1]!r} at offset {bad_at:,}) "
            "and no other encoding fits it. Convert it to UTF-8 first, e.g. "
            "iconv -f cp1252 -t utf-8 FILE > FILE.utf8, naming the encoding it was saved in.")
    return best.encoding, "replace"


def decode_bytes(data: bytes, *, where: str = "the bytes") -> tuple[str, str, int]:
    """``(text, encoding, replaced)``: bytes decoded as :func:`file_blocks` decodes files."""
    kind = binary_kind(data[:BLOCK])
    if kind:
        raise BinaryFileError(f"{where} is {kind}, not text.")
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return unicodedata.normalize("NFC", data.decode(encoding)), encoding, 0
    except UnicodeDecodeError as exc:
        encoding, errors = _choose_encoding(where, data[:BLOCK] + data[exc.start:][:BLOCK],
                                            min(exc.start, BLOCK))
    text = data.decode(encoding, errors=errors)
    replaced = text.count("\ufffd") - data.count("\ufffd".encode())
    return unicodedata.normalize("NFC", text), encoding, replaced


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """The offset of the first byte that does not decode, or None (read a block at a time)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return offset
    return None


def _file_encoding(path: Path) -> tuple[str, str]:
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    kind = binary_kind(head)
    if kind:
        raise BinaryFileError(f"{path} is {kind.replace('FILE', path.name)}, not text.")
    encoding = next((name for bom, name in _BOMS if head.startswith(bom)), "utf-8")
    bad = _first_bad_byte(path, encoding)
    if bad is None:
        return encoding, "strict"
    with path.open("rb") as fh:
        sample = fh.read(BLOCK)
        fh.seek(max(0, bad - 1024))
        sample += fh.read(1 << 16)
    return _choose_encoding(str(path), sample, min(bad, BLOCK))


def _rechunk(blocks: Iterable[str]) -> Iterator[str]:
    """The same text in blocks that end at a line break or a space, in NFC."""
    carry = ""
    for block in blocks:
        text = carry + block
        cut = text.rfind("\n")
        if cut < 0:
            cut = max(text.rfind(" "), text.rfind("\t"))
        if cut < 0:
            carry = text
            if len(carry) < 16 * BLOCK:
                continue
            cut = len(text) - 1
        carry = text[cut + 1 :]
        yield unicodedata.normalize("NFC", text[: cut + 1])
    if carry:
        yield unicodedata.normalize("NFC", carry)


def text_blocks(text: str) -> Iterator[str]:
    """A long string in blocks of about :data:`BLOCK` characters (NFC, cut at spaces)."""
    return _rechunk(text[i : i + BLOCK] for i in range(0, len(text), BLOCK))


class _HTMLText(HTMLParser):
    """The text of an HTML document, fed a block at a time; markup, scripts and styles dropped."""

    _BREAKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                         "section", "article", "title", "td", "th", "pre", "blockquote"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)

    def take(self) -> str:
        out, self.parts = "".join(self.parts), []
        return out


def _html_text(blocks: Iterable[str]) -> Iterator[str]:
    parser = _HTMLText()
    for block in blocks:
        parser.feed(block)
        yield parser.take()
    parser.close()
    yield parser.take()


def _conllu_text(blocks: Iterable[str]) -> Iterator[str]:
    """The ``# text = `` lines of CoNLL-U (blocks end at line breaks)."""
    for block in blocks:
        yield "\n".join(line[9:] for line in block.splitlines() if line.startswith("# text = "))


def file_blocks(path: Path, info: ReadInfo) -> Iterator[str]:
    """The text of one file, a block at a time (see the module docstring); ``info`` is updated.

    Raises ``BinaryFileError`` for a binary file, ``ValueError`` for an unknown encoding.
    """
    encoding, errors = _file_encoding(path)
    info.files += 1
    info.encodings[encoding.replace("_", "-")] += 1
    decoder = codecs.getincrementaldecoder(encoding)(errors)

    def decoded() -> Iterator[str]:
        with path.open("rb") as fh:
            while block := fh.read(BLOCK):
                text = decoder.decode(block)
                if errors == "replace":
                    replaced = text.count("\ufffd") - block.count("\ufffd".encode())
                    if replaced > 0:
                        if not info.damaged or info.damaged[-1] != str(path):
                            info.damaged.append(str(path))
                        info.decode_errors += replaced
                yield text
            yield decoder.decode(b"", final=True)

    blocks = _rechunk(decoded())
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        blocks = _html_text(blocks)
    elif suffix == ".conllu":
        blocks = _conllu_text(blocks)
    yield from blocks


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def folder_files(folder: Path) -> list[Path]:
    """The text files of ``folder`` and its subfolders, hidden ones left out, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder)
                  and p.suffix.lower() in TEXT_SUFFIXES)
