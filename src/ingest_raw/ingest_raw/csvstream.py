"""CSV bytes prepared for Postgres COPY: the header split off, chunks cut at record boundaries, and every
declared null marker rewritten to the one null string COPY understands.

Postgres parses and type-checks the rows itself (and names the line and column of a bad value). Python
only looks closer at a chunk that holds a quote (to find where records end, and to refuse what COPY would
silently change) or may hold a second null spelling; the common case is a plain pass-through.

Every step is linear in the input: a record still incomplete is scanned again only once the bytes it has
gathered have doubled, and no record may grow past the declared `max_record_bytes`, which bounds memory.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ingest_raw.declarations import CsvFormat
from ingest_raw.errors import PermanentLoadError, shorten

_BOM = b"\xef\xbb\xbf"
_MIB = 1 << 20
#: Bytes of whole lines rewritten by one `re.sub` (see `_NullRewriter.__call__`).
_REWRITE_GROUP = 1 << 16
#: Words Postgres reads as the clock's date or time in a date or timestamp: a load of them gives other
#: rows every day from the same input.
_RELATIVE_WORDS = (b"now", b"today", b"tomorrow", b"yesterday")
_RELATIVE_TIME = re.compile(rb"(?i)\b(?:" + b"|".join(_RELATIVE_WORDS) + rb")\b")


@dataclass(frozen=True)
class Header:
    raw: bytes
    names: tuple[str, ...]


def copy_null(fmt: CsvFormat) -> str:
    """The null string handed to COPY: the first non-empty marker, else the empty string."""
    return next((marker for marker in fmt.null_markers if marker), "")


def describe_size(size: int) -> str:
    return f"{size / _MIB:g} MiB" if size >= _MIB else f"{size} bytes"


def split_header(
    chunks: Iterable[bytes], fmt: CsvFormat, where: str, max_record_bytes: int
) -> tuple[Header, Iterator[bytes]]:
    """The header line (parsed) and the remaining bytes, chunk by chunk."""
    chunks = iter(chunks)
    buffer = bytearray()
    end = -1
    for chunk in chunks:
        searched = len(buffer)
        buffer += chunk
        end = buffer.find(b"\n", searched)
        if end >= 0:
            break
        _refuse_cr_only(buffer, where)
        if len(buffer) > max_record_bytes:
            raise PermanentLoadError(
                f"{where} line 1 (header): no line end within the first {describe_size(max_record_bytes)} "
                f"(the source's max_record_bytes)"
            )
    if not buffer.strip():
        raise PermanentLoadError(f"{where} is empty: expected a header line naming the columns")
    _refuse_cr_only(buffer[: end if end >= 0 else len(buffer)], where)
    end = end + 1 if end >= 0 else len(buffer)
    raw, rest = bytes(buffer[:end]), bytes(buffer[end:])
    try:
        text = raw.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        raise PermanentLoadError(f"{where} line 1 (header): invalid UTF-8 ({error.reason})") from error
    (names,) = csv.reader([text], delimiter=fmt.delimiter, quotechar=fmt.quote)
    return Header(raw, tuple(name.strip() for name in names)), _prepend(rest, chunks)


def _refuse_cr_only(line: bytes | bytearray, where: str) -> None:
    """A carriage return not followed by a line feed before the first line feed: old Mac line endings,
    which the record splitter (and most tools) would read as one endless line."""
    carriage = line.find(b"\r")
    if 0 <= carriage < len(line) - 1 and line[carriage + 1] != ord("\n"):
        raise PermanentLoadError(
            f"{where} line 1 (header): lines end with a carriage return alone (CR-only line endings); "
            f"expected LF or CRLF line endings"
        )


def _prepend(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from chunks


class Records:
    """Re-cuts chunks so each ends at a record boundary (a line end outside quotes) and rewrites the extra
    null markers. Iterating yields the chunks for COPY; `lines` counts the input lines yielded so far,
    header included, and `scanned_bytes` the bytes the quote-aware scan has read (at most about twice
    the input, whatever the records look like).

    A quote must open a field or close it: `Joe "Best" Air` is refused with its line and column (COPY would
    load it as `Joe Best Air`); write it quoted with the quotes doubled, `"Joe ""Best"" Air"`."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        fmt: CsvFormat,
        where: str,
        columns: tuple[str, ...],
        max_record_bytes: int,
        time_columns: frozenset[str] = frozenset(),
    ):
        self._chunks = chunks
        self._time_fields = frozenset(index for index, name in enumerate(columns) if name in time_columns)
        self._where = where
        self._columns = columns
        self._limit = max_record_bytes
        self._rewrite = _NullRewriter(fmt)
        self._quote = fmt.quote.encode()
        self._delimiter = fmt.delimiter.encode()
        d, q = re.escape(self._delimiter), re.escape(self._quote)
        quoted = q + rb"(?:[^" + q + rb"]++|" + q + q + rb")*+" + q
        field = rb"(?:" + quoted + rb"|[^" + q + d + rb"\r\n]*+)"
        fields = field + rb"(?:" + d + field + rb")*+"
        self._field = re.compile(field)
        self._fields = re.compile(fields)
        self._complete = re.compile(rb"(?:" + fields + rb"\r?\n)*+")
        opening = rb"(?P<open>" + q + rb"(?:[^" + q + rb"]++|" + q + q + rb")*+)"
        self._partial = re.compile(fields + rb"(?:" + opening + rb"|\r)?\Z")
        self.lines = 1
        self.scanned_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        buffer = bytearray()
        quoted = False  # the buffer holds a quote: only the quote-aware scan may cut it
        scanned = 0  # length of the buffer at its last quote-aware scan that found no cut
        for chunk in self._chunks:
            searched = len(buffer)
            buffer += chunk
            quoted = quoted or self._quote in chunk
            if quoted:
                if len(buffer) < 2 * scanned and len(buffer) <= self._limit:
                    continue
                cut = self._scan(buffer, final=False)
            else:
                cut = buffer.rfind(b"\n", searched) + 1  # the carry holds no line end
            if cut:
                yield from self._emit(buffer, cut)
                quoted = self._quote in buffer
            scanned = len(buffer) if quoted else 0
            if len(buffer) > self._limit:
                self._too_long(buffer)
        if buffer:
            if quoted or self._quote in buffer:
                self._scan(buffer, final=True)
            yield from self._emit(buffer, len(buffer))

    def _emit(self, buffer: bytearray, cut: int) -> Iterator[bytes]:
        with memoryview(buffer) as view:
            piece = bytes(view[:cut])
        del buffer[:cut]
        if self._time_fields:
            self._refuse_relative_time(piece)
        self.lines += piece.count(b"\n")
        return self._rewrite(piece)  # a generator: the piece is rewritten as COPY takes it

    def _scan(self, buffer: bytearray, final: bool) -> int:
        """Where the complete records of `buffer` end; refuses a malformed record (and, at the end of the
        input, an unterminated quoted field) naming its line and column."""
        self.scanned_bytes += len(buffer)
        end = self._complete.match(buffer).end()
        partial = self._partial.match(buffer, end)
        if partial is None:
            self._malformed(buffer, end)
        if final and partial.group("open") is not None:
            opened = partial.start("open")
            column = self._column(buffer, end, opened)
            raise PermanentLoadError(
                f"{self._where} line {self._line(buffer, opened)}, column {column}: quoted field never "
                f"closed (a quote opens it here and no closing quote follows before the end of the input)"
            )
        return end

    def _malformed(self, buffer: bytearray, start: int) -> None:
        at = self._fields.match(buffer, start).end()
        place = f"{self._where} line {self._line(buffer, at)}, column {self._column(buffer, start, at)}"
        char = buffer[at : at + 1]
        if char == self._quote:
            problem = (
                "a quote inside an unquoted field; quote the whole field and double the quotes inside it "
                '(e.g. "Joe ""Best"" Air")'
            )
        elif char == b"\r":
            problem = "a carriage return without a line feed (CR-only line endings?); expected LF or CRLF"
        else:
            found = bytes(char).decode("utf-8", "replace")
            problem = f"expected a delimiter or the end of the line after a closing quote, found {found!r}"
        context = bytes(buffer[max(start, at - 40) : at + 40]).decode("utf-8", "replace")
        raise PermanentLoadError(f"{place}: {problem}; near {shorten(context)!r}")

    def _too_long(self, buffer: bytearray) -> None:
        partial = self._partial.match(buffer, 0)
        opened = ""
        if partial is not None and partial.group("open") is not None:
            opened = (
                f"; a quoted field opened at line {self._line(buffer, partial.start('open'))} never closes "
                f"(a stray quote?)"
            )
        raise PermanentLoadError(
            f"{self._where} line {self.lines + 1}: record longer than {describe_size(self._limit)} "
            f"(the source's max_record_bytes){opened}"
        )

    def _line(self, buffer: bytes | bytearray, position: int) -> int:
        return self.lines + 1 + buffer.count(b"\n", 0, position)

    def _column(self, buffer: bytearray, record_start: int, position: int) -> str:
        """The header name of the field holding `position` (1-based number when past the header)."""
        index = self._field_index(buffer, record_start, position)
        return self._columns[index] if index < len(self._columns) else str(index + 1)

    def _field_index(self, buffer: bytes | bytearray, record_start: int, position: int) -> int:
        index, at = 0, record_start
        while True:
            at = self._field.match(buffer, at).end()
            if at >= position or buffer[at : at + 1] != self._delimiter:
                return index
            index, at = index + 1, at + 1

    def _refuse_relative_time(self, piece: bytes) -> None:
        """Refuses now, today, tomorrow or yesterday in a date or timestamp column (whole records: the
        piece ends at a record boundary). Linear: records are walked once, only in a piece that holds
        one of the words (found first without the regular expression, some 20 times faster)."""
        if not _may_hold_relative_time(piece):
            return
        record = 0
        for match in _RELATIVE_TIME.finditer(piece):
            while True:  # the start of the record holding the match
                end = self._fields.match(piece, record).end()
                end += 2 if piece[end : end + 2] == b"\r\n" else 1
                if end > match.start():
                    break
                record = end
            index = self._field_index(piece, record, match.start())
            if index in self._time_fields:
                raise PermanentLoadError(
                    f"{self._where} line {self._line(piece, match.start())}, column {self._columns[index]}: "
                    f"{match.group().decode()!r} is the clock's date or time (Postgres reads it as the "
                    f"moment of the load), not one written in the input; expected a date or time"
                )


def _may_hold_relative_time(piece: bytes) -> bool:
    """Whether `piece` may hold one of the words, lowered a window at a time (a copy of a whole piece
    would add a record's size to the memory a load may use)."""
    overlap = max(map(len, _RELATIVE_WORDS))
    for start in range(0, len(piece), _REWRITE_GROUP):
        window = piece[start : start + _REWRITE_GROUP + overlap].lower()
        if any(word in window for word in _RELATIVE_WORDS):
            return True
    return False


class _NullRewriter:
    """Rewrites unquoted fields equal to an extra null marker into COPY's null string."""

    def __init__(self, fmt: CsvFormat):
        target = copy_null(fmt)
        extra = [marker for marker in fmt.null_markers if marker != target]
        self._replacement = target.encode()
        self._needles = [marker.encode() for marker in extra if marker]
        self._rewrites_empty = "" in extra
        delimiter, quote = re.escape(fmt.delimiter.encode()), re.escape(fmt.quote.encode())
        self._delimiter = fmt.delimiter.encode()
        before, after = rb"(?<![^" + delimiter + rb"\n])", rb"(?![^" + delimiter + rb"\r\n])"
        alternatives = [quote + rb"(?:[^" + quote + rb"]++|" + quote + quote + rb")*+" + quote]
        if self._needles:
            markers = b"|".join(re.escape(needle) for needle in self._needles)
            alternatives.append(before + rb"(?:" + markers + rb")" + after)
        if self._rewrites_empty:
            alternatives.append(before + after + rb"(?!\Z)")
        self._pattern = re.compile(b"|".join(alternatives))
        self._quote = fmt.quote.encode()

    def __call__(self, chunk: bytes) -> Iterator[bytes]:
        """The chunk rewritten, in pieces of about `_REWRITE_GROUP` bytes: `re.sub` keeps every piece
        until it joins them (about 100 bytes per match), and rewriting makes a line of empty fields
        three times longer, so a long line goes through `finditer` and out in pieces of that size."""
        if not self._may_hold_marker(chunk):
            yield chunk
            return
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", min(start + _REWRITE_GROUP, len(chunk)) - 1) + 1 or len(chunk)
            if end - start <= 2 * _REWRITE_GROUP:
                yield self._pattern.sub(self._replace, chunk[start:end])
            else:
                yield from self._rewrite_long(chunk, start, end)
            start = end

    def _rewrite_long(self, chunk: bytes, start: int, end: int) -> Iterator[bytes]:
        out, last = bytearray(), start
        with memoryview(chunk) as view:
            for match in self._pattern.finditer(chunk, start, end):
                if not match.group().startswith(self._quote):
                    out += view[last : match.start()]
                    out += self._replacement
                    last = match.end()
                    if len(out) >= _REWRITE_GROUP:
                        yield bytes(out)
                        out.clear()
            out += view[last:end]
        yield bytes(out)

    def _may_hold_marker(self, chunk: bytes) -> bool:
        if any(needle in chunk for needle in self._needles):
            return True
        if not self._rewrites_empty:
            return False
        d = self._delimiter
        return chunk.startswith(d) or any(pair in chunk for pair in (d + d, d + b"\n", d + b"\r", b"\n" + d))

    def _replace(self, match: re.Match[bytes]) -> bytes:
        field = match.group()
        return field if field.startswith(self._quote) else self._replacement
