"""Download an http(s) input: a per-read timeout and a total deadline that covers redirects and
response headers too, redirects only to http(s) on the same or a declared host, a body cut short of its
Content-Length taken for a lost connection. Imported only when a URL is read: a reader program starts
before these modules load."""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import time
import urllib.parse
import urllib.request

from ingest_raw.errors import PermanentLoadError, TransientLoadError, shorten


class _Deadline:
    """The total deadline of one download, redirects and response headers included: a server dripping
    its status line or headers a byte at a time never trips the per-read timeout either."""

    def __init__(self, url: str, seconds: float):
        self.url = url
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self, count: int = 0) -> None:
        if time.monotonic() > self.at:
            raise TransientLoadError(
                f"{self.url}: download not finished within {self.seconds:g} s (the source's "
                f"deadline_seconds) after {count} bytes"
            )


class _DeadlineSocket(io.RawIOBase):
    """A response's socket (`sock.makefile`, unbuffered), read under the download's deadline."""

    def __init__(self, raw: io.RawIOBase, deadline: _Deadline):
        self._raw = raw
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._deadline.check()
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock, *args, deadline: _Deadline, **kwargs):
        super().__init__(sock, *args, **kwargs)
        fp, self.fp = self.fp, io.BufferedReader(_DeadlineSocket(sock.makefile("rb", buffering=0), deadline))
        fp.close()  # the socket stays open for the new file (urllib closes the socket itself at once)


class _DeadlineConnection:
    """An HTTP(S) connection whose responses, headers first, are read under the download's deadline."""

    def __init__(self, *args, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)


class _DeadlineHTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def http_open(self, req):
        return self.do_open(functools.partial(_DeadlineHTTPConnection, deadline=self._deadline), req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def https_open(self, req):
        options = {"context": self._context}
        if hasattr(self, "_check_hostname"):  # Python < 3.12
            options["check_hostname"] = self._check_hostname
        connection = functools.partial(_DeadlineHTTPSConnection, deadline=self._deadline)
        return self.do_open(connection, req, **options)


class HttpBody(io.RawIOBase):
    """A response body that counts what it hands out, treats a body cut short of its Content-Length
    as a lost connection (http.client returns a silent EOF there, which would load a truncated input)
    and gives up once the download's total deadline has passed (a server trickling a byte at a time
    never trips the per-read timeout)."""

    def __init__(self, response: http.client.HTTPResponse, deadline: _Deadline):
        self._response = response
        self._deadline = deadline
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._deadline.check(self.count)
        size = self._response.readinto(buffer)
        if size == 0 and len(buffer) and self._response.length:
            raise http.client.IncompleteRead(b"", self._response.length)
        self.count += size
        return size


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http(s) on the same host as the first request or a declared host."""

    def __init__(self, url: str, allowed_hosts: tuple[str, ...]):
        self._hosts = {urllib.parse.urlsplit(url).hostname, *allowed_hosts}
        self._url = url

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl))
        if target.scheme not in ("http", "https"):
            raise PermanentLoadError(
                f"{self._url}: HTTP {code} redirects to {shorten(newurl)!r}; only http(s) redirects are "
                f"followed"
            )
        if target.hostname not in self._hosts:
            raise PermanentLoadError(
                f"{self._url}: HTTP {code} redirects to host {target.hostname}; redirects are followed to "
                f"{', '.join(sorted(map(str, self._hosts)))} only (the source's redirect_hosts)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(
    url: str,
    timeout: float,
    deadline_seconds: float,
    redirect_hosts: tuple[str, ...],
    stack: contextlib.ExitStack,
) -> HttpBody:
    """The body of `url`'s response, closed with `stack`."""
    deadline = _Deadline(url, deadline_seconds)
    request = urllib.request.Request(url, headers={"User-Agent": "ingest-raw"})
    opener = urllib.request.build_opener(
        _Redirects(url, redirect_hosts), _DeadlineHTTPHandler(deadline), _DeadlineHTTPSHandler(deadline)
    )
    response = stack.enter_context(opener.open(request, timeout=timeout))
    return HttpBody(response, deadline)
