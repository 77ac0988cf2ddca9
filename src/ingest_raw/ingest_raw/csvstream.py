"""CSV bytes prepared for Postgres COPY: the header split off, chunks cut at record boundaries, and every
declared null marker rewritten to the one null string COPY understands.

Postgres parses and type-checks the rows itself (and names the line and column of a bad value); Python
only touches a chunk when it may hold a second null spelling, so the common case is a plain pass-through.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ingest_raw.declarations import CsvFormat
from ingest_raw.errors import PermanentLoadError

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Header:
    raw: bytes
    names: tuple[str, ...]


def copy_null(fmt: CsvFormat) -> str:
    """The null string handed to COPY: the first non-empty marker, else the empty string."""
    return next((marker for marker in fmt.null_markers if marker), "")


def split_header(chunks: Iterable[bytes], fmt: CsvFormat, where: str) -> tuple[Header, Iterator[bytes]]:
    """The header line (parsed) and the remaining bytes, chunk by chunk."""
    chunks = iter(chunks)
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        if b"\n" in buffer:
            break
    if not buffer.strip():
        raise PermanentLoadError(f"{where} is empty: expected a header line naming the columns")
    end = buffer.find(b"\n") + 1 or len(buffer)
    raw, rest = buffer[:end], buffer[end:]
    try:
        text = raw.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        raise PermanentLoadError(f"{where} line 1 (header): invalid UTF-8 ({error.reason})") from error
    (names,) = csv.reader([text], delimiter=fmt.delimiter, quotechar=fmt.quote)
    return Header(raw, tuple(name.strip() for name in names)), _prepend(rest, chunks)


def _prepend(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from chunks


def records(chunks: Iterable[bytes], fmt: CsvFormat) -> Iterator[bytes]:
    """Re-cut `chunks` so each ends at a record boundary (a newline outside quotes) and rewrite the
    extra null markers. Multi-line quoted fields are kept whole by counting quotes: CSV escapes a
    quote by doubling it, so an even count before a newline means that newline ends a record."""
    rewrite = _NullRewriter(fmt)
    quote = fmt.quote.encode()
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = data.rfind(b"\n")
        if quote in data:
            while cut >= 0 and data.count(quote, 0, cut) % 2:
                cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield rewrite(data[: cut + 1])
    if carry:
        yield rewrite(carry)


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
        alternatives = [quote + rb"(?:[^" + quote + rb"]|" + quote + quote + rb")*" + quote]
        if self._needles:
            markers = b"|".join(re.escape(needle) for needle in self._needles)
            alternatives.append(before + rb"(?:" + markers + rb")" + after)
        if self._rewrites_empty:
            alternatives.append(before + after + rb"(?!\Z)")
        self._pattern = re.compile(b"|".join(alternatives))
        self._quote = fmt.quote.encode()

    def __call__(self, chunk: bytes) -> bytes:
        if not self._may_hold_marker(chunk):
            return chunk
        return self._pattern.sub(self._replace, chunk)

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
