"""The CSV preparation for COPY: header, record boundaries and null markers, on tricky chunkings."""

from __future__ import annotations

import pytest

from ingest_raw.csvstream import Records, copy_null, split_header
from ingest_raw.declarations import CsvFormat
from ingest_raw.errors import PermanentLoadError

NA_OR_EMPTY = CsvFormat(null_markers=("NA", ""))
LIMIT = 1 << 20


def _prepare(data: bytes, fmt: CsvFormat, chunk: int) -> tuple[tuple[str, ...], bytes, list[bytes]]:
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    header, rest = split_header(chunks, fmt, "test.csv", LIMIT)
    out = list(Records(rest, fmt, "test.csv", header.names, LIMIT))
    return header.names, b"".join(out), out


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 1 << 20])
def test_records_are_cut_outside_quotes_and_extra_null_markers_rewritten(chunk):
    data = b'a,b,c\n1,,NA\n,"multi\nline, NA",x\n"",NA,"q""uote"\n4,5,6'
    names, body, pieces = _prepare(data, NA_OR_EMPTY, chunk)
    assert names == ("a", "b", "c")
    assert body == b'1,NA,NA\nNA,"multi\nline, NA",x\n"",NA,"q""uote"\n4,5,6'
    for piece in pieces[:-1]:
        assert piece.endswith(b"\n") and piece.count(b'"') % 2 == 0


def test_the_first_non_empty_marker_is_copys_null_string():
    assert copy_null(NA_OR_EMPTY) == "NA"
    assert copy_null(CsvFormat()) == ""
    assert copy_null(CsvFormat(null_markers=("", "-", "NULL"))) == "-"


def test_other_markers_and_delimiters():
    fmt = CsvFormat(delimiter=";", null_markers=("", "-", "NULL"))
    _, body, _ = _prepare(b"a;b;c\nNULL;-x;\n;NULL;-\n", fmt, 4)
    assert body == b"-;-x;-\n-;-;-\n"


def test_a_chunk_without_markers_passes_through_untouched():
    data = b"a,b\n" + b"1,2\n" * 1000
    _, body, _ = _prepare(data, NA_OR_EMPTY, 1 << 20)
    assert body == data[4:]


def test_header_with_bom_and_crlf():
    names, body, _ = _prepare(b"\xef\xbb\xbfa,b\r\n1,\r\n", NA_OR_EMPTY, 3)
    assert names == ("a", "b")
    assert body == b"1,NA\r\n"


def test_undecodable_header_is_named():
    with pytest.raises(PermanentLoadError, match=r"test.csv line 1 \(header\): invalid UTF-8"):
        split_header([b"a,\xff\n1,2\n"], NA_OR_EMPTY, "test.csv", LIMIT)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_the_clocks_time_is_refused_in_a_time_column_only(chunk):
    """now/today/tomorrow/yesterday: Postgres reads them in a date or timestamp as the moment of the load
    (other rows from the same input every day). In a text column they are words like any other."""

    def records(data: bytes) -> bytes:
        chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        header, rest = split_header(chunks, CsvFormat(), "test.csv", LIMIT)
        return b"".join(Records(rest, CsvFormat(), "test.csv", header.names, LIMIT, frozenset({"at"})))

    words = b'name,at\nnow,2013-01-01\n"Today,\nNow",2013-01-02\nTomorrow Air,2013-01-03\n'
    assert records(words) == words.split(b"\n", 1)[1]
    with pytest.raises(PermanentLoadError, match=r"test.csv line 5, column at: 'Tomorrow' is the clock's"):
        records(b'name,at\n"a\nb",2013-01-01\nx,2013-01-02\nnow,  Tomorrow 10:00\n')
    with pytest.raises(PermanentLoadError, match=r"test.csv line 2, column at: 'now'"):
        records(b'at,name\n"now",x\n')
