"""POSTs to one HTTP(S) endpoint through libcurl (pycurl), over keep-alive connections: the
HTTP side of the SendGrid transport, where every mail of a worker goes.

Why libcurl: a ~10 kB POST and its answer cost ~0.03 ms of CPU through pycurl against ~0.18
ms through urllib3, whose ``http.client`` builds each request header by header and parses
each answer's headers with the ``email`` package (``bench/sendgrid_clients.py``; bench/README,
"Session 6"). At 2,000 mails/s that is a third of a core.

What stays as it was with urllib3:

- **Nothing sent twice.** libcurl resends a request on its own when a reused connection
  closes before any byte of the answer, POST included (its "connection died, retrying a fresh
  connect"). Here the body comes from a read callback whose rewind always fails, so libcurl
  cannot resend it: that case ends as an error after the request was written, a
  :class:`MaybeSent` (tests/transports/test_sendgrid.py pins it with a server that does that).
- **Never sent or maybe sent.** :class:`NeverSent` when the request was certainly not written:
  no free connection in time, a closed pool, or libcurl failed before the transfer began
  (name resolution, connect, proxy tunnel, TLS handshake or certificate: libcurl's
  ``REQUEST_SIZE``, the bytes of requests it wrote in this transfer, is 0, or the error is
  one that only comes before a request). Any other failure is :class:`MaybeSent`.
- **TLS verified** (peer and host name) against ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set,
  else the CA store Python's ``ssl`` uses (not the path compiled into the wheel's libcurl);
  HTTP/1.1 only; no redirect followed; only http and https.
- **Timeouts.** Connecting (TCP, proxy tunnel and TLS) gets ``connect_timeout``; the whole
  exchange ``connect_timeout + timeout``. urllib3's read timeout bounded each wait for bytes;
  a total also bounds an answer that trickles.
- **Bounded answers.** At most :data:`MAX_ANSWER` bytes of a body are kept (SendGrid answers
  202 with none; an error is a small JSON), the rest is read and dropped.
- **A bounded pool.** At most ``max_connections`` handles (each one keep-alive connection);
  a thread beyond them waits up to ``pool_timeout`` for one, then :class:`NeverSent`.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import select
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pycurl

MAX_ANSWER = 64 * 1024
_NO_CODE = -1  # a failure libcurl gave no transfer error code for
_NOT_REWINDABLE = pycurl.SEEKFUNC_FAIL
# libcurl errors that only happen before a request is written: name resolution, connecting,
# TLS set-up and the certificate.
_BEFORE_ANY_REQUEST = frozenset(
    {
        pycurl.E_COULDNT_RESOLVE_PROXY,
        pycurl.E_COULDNT_RESOLVE_HOST,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_SSL_CONNECT_ERROR,
        pycurl.E_PEER_FAILED_VERIFICATION,
        pycurl.E_SSL_CERTPROBLEM,
        pycurl.E_SSL_CIPHER,
        pycurl.E_SSL_CACERT_BADFILE,
        pycurl.E_SSL_ISSUER_ERROR,
        pycurl.E_SSL_PINNEDPUBKEYNOTMATCH,
    }
)


class NeverSent(Exception):
    """The request was not written: sending it again cannot make a second copy."""


class MaybeSent(Exception):
    """The request may have reached the server and been acted on; no answer says so."""


@dataclass(frozen=True)
class Answer:
    """The status, the header lines of the final answer (``name: value``, as received) and
    at most :data:`MAX_ANSWER` bytes of its body."""

    status: int
    header_lines: tuple[bytes, ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), without surrounding space."""
        wanted = name.lower().encode("latin-1") + b":"
        for line in self.header_lines:
            if line[: len(wanted)].lower() == wanted:
                return line[len(wanted) :].strip().decode("latin-1")
        return None

    def headers(self) -> dict[str, str]:
        """Every header by lower-cased name (the last of repeated ones)."""
        found: dict[str, str] = {}
        for line in self.header_lines:
            name, colon, value = line.partition(b":")
            if colon:
                found[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return found


@dataclass(frozen=True)
class CaStore:
    """Where trusted certificates are: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` as OpenSSL and
    Python read them, else Python's default verify paths."""

    cafile: str | None
    capath: str | None

    @classmethod
    def from_environment(cls) -> CaStore:
        paths = ssl.get_default_verify_paths()
        cafile = os.environ.get("SSL_CERT_FILE") or paths.cafile or paths.openssl_cafile
        capath = os.environ.get("SSL_CERT_DIR") or paths.capath or paths.openssl_capath
        return cls(
            cafile if cafile and os.path.isfile(cafile) else None,
            capath if capath and os.path.isdir(capath) else None,
        )


class CurlPost:
    """POST to ``url`` with fixed ``headers``, one body (:meth:`post`) or several at once
    (:meth:`post_many`); safe to share between threads."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        connect_timeout: float,
        timeout: float,
        max_connections: int,
        pool_timeout: float,
        proxy: str | None = None,
    ) -> None:
        self.url = url
        self._headers = [f"{name}: {value}" for name, value in headers.items()]
        self._headers.append("Expect:")  # no 100-continue round trip before a large body
        self._connect_ms = max(1, int(connect_timeout * 1000))
        self._total_ms = max(1, int((connect_timeout + timeout) * 1000))
        self._proxy = proxy
        self._ca = CaStore.from_environment()
        self._pool_timeout = pool_timeout
        self._idle: queue.LifoQueue[pycurl.Curl] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._closed = False
        self._lock = threading.Lock()
        self._handles: list[pycurl.Curl] = []
        self._local = threading.local()  # each thread's _Window, for post_many
        self._windows: list[_Window] = []

    def post(self, body: bytes) -> Answer:
        if self._closed:
            raise NeverSent("the connection pool is closed")
        if not self._slots.acquire(timeout=self._pool_timeout):
            raise NeverSent("no free connection in time (EmptyPool)")
        try:
            handle = self._take()
            try:
                answer = self._perform(handle, body)
            except BaseException:
                self._discard(handle)  # its connection is in an unknown state: never reused
                raise
            self._give_back(handle)
            return answer
        finally:
            self._slots.release()

    def post_many(self, bodies: Sequence[bytes]) -> list[Answer | NeverSent | MaybeSent]:
        """Every body POSTed at the same time, the answers (or why there is none) in the
        order of ``bodies``; nothing is raised for one post's failure.

        The posts run over the calling thread's own keep-alive connections (a
        :class:`_Window`, at most ``len(bodies)`` of them, kept for its next call), not the
        shared pool of :meth:`post`: a sending thread then waits one round trip for a whole
        window of mails instead of one per mail."""
        if not bodies:
            return []
        window = self._thread_window()
        if window is None:
            return [NeverSent("the connection pool is closed") for _ in bodies]
        try:
            return window.post_all(bodies)
        finally:
            with self._lock:
                window.busy = False
                if self._closed:
                    window.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            handles, self._handles = self._handles, []
            idle_windows = [window for window in self._windows if not window.busy]
            self._windows = [window for window in self._windows if window.busy]
        for handle in handles:
            handle.close()
        for window in idle_windows:  # a busy one closes itself when its posts are done
            window.close()

    def _thread_window(self) -> _Window | None:
        """This thread's window, made on its first call; None once the pool is closed."""
        window: _Window | None = getattr(self._local, "window", None)
        with self._lock:
            if self._closed:
                return None
            if window is None or window.closed:
                window = _Window(self._new_handle)
                self._local.window = window
                self._windows.append(window)
            window.busy = True
        return window

    def _take(self) -> pycurl.Curl:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        handle = self._new_handle()
        with self._lock:
            if self._closed:
                handle.close()
                raise NeverSent("the connection pool is closed")
            self._handles.append(handle)
        return handle

    def _give_back(self, handle: pycurl.Curl) -> None:
        with self._lock:
            if self._closed:
                return  # close() closed it, or will
        self._idle.put(handle)

    def _discard(self, handle: pycurl.Curl) -> None:
        with self._lock:
            if handle in self._handles:
                self._handles.remove(handle)
        handle.close()

    def _new_handle(self) -> pycurl.Curl:
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, self.url)
        handle.setopt(pycurl.POST, 1)
        handle.setopt(pycurl.HTTPHEADER, self._headers)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for name resolution timeouts
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, self._connect_ms)
        handle.setopt(pycurl.TIMEOUT_MS, self._total_ms)
        handle.setopt(pycurl.SSL_VERIFYPEER, 1)
        handle.setopt(pycurl.SSL_VERIFYHOST, 2)
        if self._ca.cafile is not None:
            handle.setopt(pycurl.CAINFO, self._ca.cafile)
        if self._ca.capath is not None:
            handle.setopt(pycurl.CAPATH, self._ca.capath)
        handle.setopt(pycurl.PROXY, self._proxy or "")  # "": no proxy, whatever the environment
        handle.setopt(pycurl.SEEKFUNCTION, _cannot_rewind)
        return handle

    def _perform(self, handle: pycurl.Curl, body: bytes) -> Answer:
        transfer = _Transfer(handle, body)
        try:
            handle.perform()
        except pycurl.error as exc:
            code, message = exc.args[0], str(exc.args[1]) if len(exc.args) > 1 else ""
            raise transfer.failure(int(code), message) from None
        return transfer.answer()


def _cannot_rewind(offset: int, origin: int) -> int:
    """libcurl rewinds a body only to send it again (a reused connection that died before
    answering): refusing makes that an error, so a mail is never posted twice."""
    return _NOT_REWINDABLE


def _header_collector(lines: list[bytes]) -> Callable[[bytes], None]:
    def collect(line: bytes) -> None:
        if line.startswith(b"HTTP/"):
            lines.clear()  # a proxy's CONNECT answer, or a 1xx: only the final answer counts
        elif line.strip():
            lines.append(line.rstrip(b"\r\n"))

    return collect


class _Kept:
    """The first MAX_ANSWER bytes of a body; the rest is read and dropped."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        room = MAX_ANSWER - self._size
        if room > 0:
            self._parts.append(data[:room])
            self._size += min(room, len(data))

    def bytes(self) -> bytes:
        return b"".join(self._parts)


class _Transfer:
    """One POST set up on ``handle``: the answer it collects and, when libcurl reports a
    failure, whether the request can have left (the same rules for :meth:`CurlPost.post`
    and :meth:`CurlPost.post_many`)."""

    def __init__(self, handle: pycurl.Curl, body: bytes) -> None:
        self.handle = handle
        self._lines: list[bytes] = []
        self._kept = _Kept()
        handle.setopt(pycurl.POSTFIELDSIZE, len(body))
        handle.setopt(pycurl.READFUNCTION, io.BytesIO(body).read)
        handle.setopt(pycurl.HEADERFUNCTION, _header_collector(self._lines))
        handle.setopt(pycurl.WRITEFUNCTION, self._kept.write)

    def answer(self) -> Answer:
        status = int(self.handle.getinfo(pycurl.RESPONSE_CODE))
        return Answer(status, tuple(self._lines), self._kept.bytes())

    def failure(self, code: int, message: str) -> NeverSent | MaybeSent:
        started = self.handle.getinfo(pycurl.REQUEST_SIZE) > 0 and code not in _BEFORE_ANY_REQUEST
        return (MaybeSent if started else NeverSent)(f"curl error {code}: {message}")


class _Window:
    """One thread's libcurl multi handle: the transfers of a :meth:`CurlPost.post_many` run
    side by side on it, and their connections stay in its cache for the thread's next
    window (libcurl keeps a multi's connections with the multi, not with an easy handle). It
    is only ever used by the thread that made it."""

    def __init__(self, new_handle: Callable[[], pycurl.Curl]) -> None:
        self._new_handle = new_handle
        self._multi = pycurl.CurlMulti()
        # libcurl says which sockets to watch and when to call back (its socket API), and
        # the window waits with poll(): no limit on descriptor numbers, unlike select().
        self._watched: dict[int, int] = {}  # socket -> poll events
        self._timeout_ms = -1  # libcurl's next timeout; -1: none
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._watch)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._time)
        self._idle: list[pycurl.Curl] = []
        self._size = 0
        self.busy = False  # between CurlPost._thread_window and the end of post_many
        self.closed = False

    def post_all(self, bodies: Sequence[bytes]) -> list[Answer | NeverSent | MaybeSent]:
        if len(bodies) > self._size:  # the multi keeps as many connections as a window needs
            self._size = len(bodies)
            self._multi.setopt(pycurl.M_MAXCONNECTS, self._size)
        running: dict[pycurl.Curl, tuple[int, _Transfer]] = {}
        results: list[Answer | NeverSent | MaybeSent | None] = [None] * len(bodies)
        try:
            for index, body in enumerate(bodies):
                handle = self._idle.pop() if self._idle else self._new_handle()
                transfer = _Transfer(handle, body)
                try:
                    self._multi.add_handle(handle)
                except pycurl.error:
                    handle.close()  # never added, never run: its mail was not sent
                    raise
                running[handle] = index, transfer
            self._run(running, results)
        except pycurl.error as exc:  # the multi handle itself failed
            self._abandon(running, results, f"libcurl: {exc}")
        except BaseException:  # interrupted (a time limit, a shutdown): nothing to return
            self._abandon(running, results, "interrupted")
            raise
        return [NeverSent("not started") if result is None else result for result in results]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for handle in self._idle:
            handle.close()
        self._idle = []
        self._multi.close()

    def _run(
        self,
        running: dict[pycurl.Curl, tuple[int, _Transfer]],
        results: list[Answer | NeverSent | MaybeSent | None],
    ) -> None:
        """Drive the transfers until each has finished (libcurl's own timeouts end each)."""
        self._act(pycurl.SOCKET_TIMEOUT, 0)
        while True:
            self._collect(running, results)
            if not running:
                return
            self._wait()

    def _watch(self, what: int, sock: int, multi: object, data: object) -> None:
        """libcurl's socket callback: watch ``sock`` for what it names, or no longer."""
        if what == pycurl.POLL_REMOVE:
            self._watched.pop(sock, None)
        else:
            self._watched[sock] = _POLL_EVENTS.get(what, 0)  # POLL_NONE: errors only

    def _time(self, timeout_ms: int) -> None:
        """libcurl's timer callback: act on a timeout in ``timeout_ms`` (-1: none)."""
        self._timeout_ms = timeout_ms

    def _act(self, sock: int, events: int) -> None:
        while True:
            code, _ = self._multi.socket_action(sock, events)
            if code != pycurl.E_CALL_MULTI_PERFORM:
                return

    def _collect(
        self,
        running: dict[pycurl.Curl, tuple[int, _Transfer]],
        results: list[Answer | NeverSent | MaybeSent | None],
    ) -> None:
        while True:
            queued, done, failed = self._multi.info_read()
            for handle in done:
                index, transfer = running.pop(handle)
                results[index] = transfer.answer()
                self._multi.remove_handle(handle)
                self._idle.append(handle)
            for handle, code, message in failed:
                index, transfer = running.pop(handle)
                results[index] = transfer.failure(code, str(message))
                self._multi.remove_handle(handle)
                handle.close()  # its connection is in an unknown state: never reused
            if not queued:
                return

    def _wait(self) -> None:
        """Until a watched socket is ready, then tell libcurl which; or until libcurl's next
        timeout (at most a second: a timeout set by no callback is never missed for long)."""
        timeout_ms = 1000 if self._timeout_ms < 0 else min(self._timeout_ms, 1000)
        poller = select.poll()
        for sock, events in self._watched.items():
            poller.register(sock, events)
        ready = poller.poll(timeout_ms) if self._watched else _sleep_ms(timeout_ms)
        if not ready:
            self._act(pycurl.SOCKET_TIMEOUT, 0)
        for sock, events in ready:
            if events & select.POLLNVAL:
                # Not an open descriptor: a socket closed without libcurl's POLL_REMOVE. It is
                # watched no longer (poll() would answer at once for it on every wait, and its
                # number may soon be another file's); libcurl is told, as of any error.
                self._watched.pop(sock, None)
            self._act(sock, _curl_events(events))

    def _abandon(
        self,
        running: dict[pycurl.Curl, tuple[int, _Transfer]],
        results: list[Answer | NeverSent | MaybeSent | None],
        why: str,
    ) -> None:
        """A window that cannot go on: each unfinished post may or may not have left (as
        libcurl's count of bytes written says), and the multi is not used again."""
        for handle, (index, transfer) in running.items():
            results[index] = transfer.failure(_NO_CODE, why)
            with contextlib.suppress(pycurl.error):
                self._multi.remove_handle(handle)
            handle.close()
        running.clear()
        self.close()


_POLL_EVENTS = {
    pycurl.POLL_IN: select.POLLIN,
    pycurl.POLL_OUT: select.POLLOUT,
    pycurl.POLL_INOUT: select.POLLIN | select.POLLOUT,
}


def _curl_events(events: int) -> int:
    """poll()'s events on a socket, as libcurl's ``socket_action`` takes them."""
    mask = 0
    if events & select.POLLIN:
        mask |= pycurl.CSELECT_IN
    if events & select.POLLOUT:
        mask |= pycurl.CSELECT_OUT
    if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
        mask |= pycurl.CSELECT_ERR
    return mask


def _sleep_ms(timeout_ms: int) -> list[tuple[int, int]]:
    """No socket to watch yet (a name being resolved): libcurl's timeout, a few ms at most."""
    time.sleep(min(timeout_ms, 5) / 1000)
    return []
