"""A dataset file read as a stream, in memory bounded by its longest row rather than by its size.

- `lines(path)`: the file's UTF-8 lines one at a time (a line longer than MAX_ROW_BYTES is refused);
- `json_items(path)`: the rows of a .json file (a top-level list, or the list under a "data" key) one at a
  time, each with the number of characters it took, found with json.JSONDecoder.raw_decode over a window of the
  text that moves along the file.

Problems get the same one-sentence DataError as reading the whole file (engine/data/readers.py): the same line and
column, the same advice.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from engine.data.readers import not_a_list, not_json, not_utf8, too_deep
from engine.jobs.failures import DataError

CHUNK_BYTES = 1 << 20
MAX_ROW_BYTES = 64 << 20  # one line, paragraph or JSON row longer than this is refused, not held
MAX_MB = MAX_ROW_BYTES >> 20
WHITESPACE = re.compile(r"[ \t\n\r]*")  # what JSON allows between tokens
TRUNCATION_MARGIN = 16  # a parse error this close to the window's end may be the window's end: read more


def too_long(name: str, where: str) -> DataError:
    return DataError(f"{name} {where} is longer than {MAX_MB} MB, more than one row can be: split it into rows.")


def lines(path: Path) -> Iterator[str]:
    """Every line of a UTF-8 file with its line ending (a byte-order mark dropped)."""
    with open(path, "rb") as handle:
        number = 0
        while line := handle.readline(MAX_ROW_BYTES + 1):
            number += 1
            if len(line) > MAX_ROW_BYTES:
                raise too_long(path.name, f"line {number}")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise not_utf8(path.name, line[error.start], number) from None
            yield text.removeprefix("\ufeff") if number == 1 else text


def _chunks(handle: BinaryIO, name: str) -> Iterator[str]:
    """The file's text in pieces of about CHUNK_BYTES (a character split between two reads is kept whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0  # before this read; the bytes the decoder carries over hold no newline (they are not ASCII)
    first = True
    while True:
        data = handle.read(CHUNK_BYTES)
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            line = newlines + error.object.count(b"\n", 0, error.start) + 1
            raise not_utf8(name, error.object[error.start], line) from None
        newlines += data.count(b"\n")
        if first:
            text, first = text.removeprefix("\ufeff"), False
        if text:
            yield text
        if not data:
            return


class _Window:
    """The part of the text still to be parsed: `text[at:]`, refilled from the file, the parsed part dropped."""

    def __init__(self, chunks: Iterator[str], name: str):
        self.chunks, self.name = chunks, name
        self.text, self.at, self.ended = "", 0, False
        self.line, self.column = 1, 1  # of text[0] in the file
        self.decoder = json.JSONDecoder()

    def more(self) -> bool:
        """Read the next piece of the file; False at its end."""
        if self.ended:
            return False
        piece = next(self.chunks, None)
        if piece is None:
            self.ended = True
            return False
        self._drop_parsed()
        self.text += piece
        return True

    def _drop_parsed(self) -> None:
        parsed = self.text[: self.at]
        newlines = parsed.count("\n")
        self.line += newlines
        self.column = len(parsed) - parsed.rfind("\n") if newlines else self.column + len(parsed)
        self.text, self.at = self.text[self.at:], 0

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the file), not consumed."""
        while True:
            self.at = WHITESPACE.match(self.text, self.at).end()
            if self.at < len(self.text):
                return self.text[self.at]
            if not self.more():
                return ""

    def expect(self, char: str, msg: str) -> None:
        if self.peek() != char:
            raise self.error(msg, self.at)
        self.at += 1

    def value(self, what: str) -> tuple[Any, int]:
        """The JSON value that starts at the next non-whitespace character, and its length in characters."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.text, self.at)
            except json.JSONDecodeError as error:
                if not self._may_be_cut(error) or not self._grow(what):
                    raise self.error(error.msg, error.pos) from None
                continue
            except RecursionError:
                raise too_deep(self.name, what) from None
            if end < len(self.text) or not self._grow(what):  # a number at the window's end may go on
                size, self.at = end - self.at, end
                return value, size

    def _may_be_cut(self, error: json.JSONDecodeError) -> bool:
        return error.msg.startswith("Unterminated string") or error.pos >= len(self.text) - TRUNCATION_MARGIN

    def _grow(self, what: str) -> bool:
        """Read more of the value being parsed, doubling what is held of it (so that a long row is parsed a
        few times, not once per piece); False at the end of the file."""
        pending = len(self.text) - self.at
        if pending > MAX_ROW_BYTES:
            raise too_long(self.name, what)
        grew = False
        while len(self.text) - self.at < 2 * pending and self.more():
            grew = True
        return grew or self.more()

    def error(self, msg: str, pos: int) -> DataError:
        newlines = self.text.count("\n", 0, pos)
        line = self.line + newlines
        column = pos - self.text.rfind("\n", 0, pos) if newlines else self.column + pos
        return not_json(self.name, msg, line, column)


def json_items(path: Path) -> Iterator[tuple[Any, int]]:
    """Every row of a .json file, as json.loads(text) would give them: the top-level list's items, or those of
    the list under a top-level "data" key; each with its length in characters."""
    with open(path, "rb") as handle:
        window = _Window(_chunks(handle, path.name), path.name)
        first = window.peek()
        if first == "":
            raise DataError(f"{path.name} is empty: add at least one row.")
        if first == "[":
            yield from _list_items(window)
        elif first == "{":
            found = yield from _data_items(window)
            if not found:
                _end(window)
                raise not_a_list(path.name, {})
        else:
            value, _ = window.value("its value")
            _end(window)
            raise not_a_list(path.name, value)
        _end(window)


def _list_items(window: _Window) -> Iterator[tuple[Any, int]]:
    window.expect("[", "Expecting '['")
    if window.peek() == "]":
        window.at += 1
        return
    number = 0
    while True:
        number += 1
        yield window.value(f"row {number}")
        if window.peek() == "]":
            window.at += 1
            return
        window.expect(",", "Expecting ',' delimiter")


def _data_items(window: _Window) -> Iterator[tuple[Any, int]]:
    """The items of the list under the top-level object's "data" key (the object's other values are read and
    dropped); returns whether there was such a list."""
    window.expect("{", "Expecting '{'")
    found = False
    if window.peek() == "}":
        window.at += 1
        return found
    while True:
        if window.peek() != '"':
            raise window.error("Expecting property name enclosed in double quotes", window.at)
        key, _ = window.value("a key")
        window.expect(":", "Expecting ':' delimiter")
        if key == "data" and not found and window.peek() == "[":
            yield from _list_items(window)
            found = True
        else:
            window.value(f"the value of '{key}'")
        if window.peek() == "}":
            window.at += 1
            return found
        window.expect(",", "Expecting ',' delimiter")


def _end(window: _Window) -> None:
    """Nothing but whitespace may follow the top-level value."""
    if window.peek() != "":
        raise window.error("Extra data", window.at)
