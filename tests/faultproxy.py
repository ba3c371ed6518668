"""A fault-injecting HTTP proxy between boto3 and the SES emulator (real sockets, no stub).

``FaultProxy(upstream)`` listens on 127.0.0.1 and forwards every request to the emulator,
one request per connection (``Connection: close``, so every request opens a connection and
connection-level faults apply to it). Each ``SendEmail`` request takes the next action of
``plan`` (``"pass"`` when the plan is empty):

==================  ==========================================================  ===========
action              what the client sees                                        SES has it?
==================  ==========================================================  ===========
``pass``            the emulator's answer                                       yes
``429``             ``TooManyRequestsException`` (HTTP 429), not forwarded      no
``500`` / ``503``   ``InternalFailure`` / ``ServiceUnavailable``, not forwarded  no
``504_after``       forwarded, then a gateway timeout (HTTP 504, no AWS code)    yes
``reset_before``    the request read, the connection reset (RST), not forwarded  no
``reset_after``     forwarded, the emulator's answer dropped, connection reset   yes
``timeout_before``  the request read, no answer until the client gives up        no
``timeout_after``   forwarded, no answer until the client gives up               yes
==================  ==========================================================  ===========

and two faults before any request is written, for the next ``seconds``: :meth:`refuse`
(the listening socket closed: connection refused) and :meth:`blackhole` (the listen queue
full: SYNs dropped, the client's connect times out).

Every SendEmail request is logged (:attr:`log`: arrival time, action, whether the emulator
got it, send_key, MessageId). ``after_forward`` (a callable) runs once the emulator accepted
a message and before the answer goes back — the SIGKILL tests kill the sender there. With
``events_queue`` (an SQS client and queue URL on the emulator), each accepted message
publishes an SES ``Send`` event tagged with its send_key, as an SES configuration set's event
destination does (moto does not publish events).
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

SEND_PATH = "/v2/email/outbound-emails"
SEND_EVENT = Path(__file__).parent / "fixtures" / "ses" / "event_send.json"
ERRORS = {
    "429": (429, "TooManyRequestsException", "Maximum sending rate exceeded."),
    "500": (500, "InternalFailure", "We encountered an internal error. Try again."),
    "503": (503, "ServiceUnavailable", "Service is unavailable. Try again later."),
}
ACTIONS = {"pass", "504_after", "reset_before", "reset_after", "timeout_before", "timeout_after", *ERRORS}


@dataclass
class Request:
    at: float                  # time.monotonic() when the request arrived
    action: str
    wall: datetime              # the proxy's clock then (tests set it to their simulated time)
    forwarded: bool = False     # the emulator got it (SES has the message)
    send_key: str | None = None
    message_id: str | None = None


def send_event_body(send_key: str, message_id: str, email: str, when: datetime) -> str:
    """The SES ``Send`` event of one accepted message (the shape of tests/fixtures/ses)."""
    doc = json.loads(SEND_EVENT.read_text())
    mail = doc["mail"]
    mail["messageId"] = mail["commonHeaders"]["messageId"] = message_id
    mail["destination"] = [email]
    mail["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    mail["tags"]["send_key"] = [send_key]
    return json.dumps(doc)


class FaultProxy:
    def __init__(self, upstream: str, hold: float = 10.0):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        #: how long timeout_* actions keep the client waiting at most (they stop when it hangs up)
        self.hold = hold
        self.plan: deque[str] = deque()
        self.log: list[Request] = []
        self.after_forward = None
        #: the time stamped on requests and Send events (a test's simulated wall clock)
        self.clock = lambda: datetime.now(UTC)
        self.events_queue: tuple | None = None  # (sqs client, queue url)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed_until = 0.0
        self._blackhole_until = 0.0
        self._listener = self._listen()
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()

    # -- control -------------------------------------------------------------------------------
    def inject(self, *actions: str) -> None:
        unknown = set(actions) - ACTIONS
        assert not unknown, f"unknown fault(s) {unknown}; known: {sorted(ACTIONS)}"
        with self._lock:
            self.plan.extend(actions)

    def refuse(self, seconds: float) -> None:
        """Connections are refused for ``seconds`` (nothing listens on the port)."""
        with self._lock:
            self._closed_until = time.monotonic() + seconds

    def blackhole(self, seconds: float) -> None:
        """Connections time out for ``seconds`` (the listen queue is full, SYNs are dropped)."""
        with self._lock:
            self._blackhole_until = time.monotonic() + seconds

    def sends(self) -> list[Request]:
        with self._lock:
            return list(self.log)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._listener.close()
        except OSError:
            pass

    # -- the accept loop -----------------------------------------------------------------------
    def _listen(self, port: int = 0, backlog: int = 64) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(backlog)
        sock.settimeout(0.02)
        return sock

    def _serve(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            if now < self._closed_until:
                self._listener.close()
                time.sleep(self._closed_until - now)
                self._listener = self._listen(self.port)
                continue
            if now < self._blackhole_until:
                self._drop_syns(self._blackhole_until - now)
                continue
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _drop_syns(self, seconds: float) -> None:
        """Fill the listen queue (backlog 0 holds one connection on Linux) with a connection of
        our own: the kernel then drops the client's SYNs and its connect times out."""
        self._listener.listen(0)
        filler = socket.create_connection(("127.0.0.1", self.port))
        time.sleep(seconds)
        filler.close()
        self._listener.accept()[0].close()  # the filler, first in the queue; a client that got
        self._listener.listen(64)           # in behind it is served by the accept loop

    # -- one connection ------------------------------------------------------------------------
    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            method, path, headers, body = _read_request(conn)
            if not (method == "POST" and path.startswith(SEND_PATH)):
                self._answer(conn, *self._forward(method, path, headers, body))
                return
            with self._lock:
                action = self.plan.popleft() if self.plan else "pass"
                record = Request(time.monotonic(), action, self.clock())
                self.log.append(record)
            request = json.loads(body or b"{}")
            tags = {t["Name"]: t["Value"] for t in request.get("EmailTags", [])}
            record.send_key = tags.get("send_key")
            if action in ERRORS:
                status, code, message = ERRORS[action]
                self._answer(conn, status, {"x-amzn-ErrorType": code, "Content-Type": "application/json"},
                             json.dumps({"message": message}).encode())
            elif action == "reset_before":
                _reset(conn)
            elif action == "timeout_before":
                _wait_for_hang_up(conn, self.hold)
            else:
                status, answer_headers, answer = self._forward(method, path, headers, body)
                if status == 200:
                    record.forwarded = True
                    record.message_id = json.loads(answer).get("MessageId")
                    self._publish(record, request)
                    if self.after_forward:
                        self.after_forward(record)
                if action == "pass":
                    self._answer(conn, status, answer_headers, answer)
                elif action == "504_after":
                    self._answer(conn, 504, {"Content-Type": "text/html"}, b"<html>Gateway Timeout</html>")
                elif action == "reset_after":
                    _reset(conn)
                elif action == "timeout_after":
                    _wait_for_hang_up(conn, self.hold)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() not in ("connection", "host", "content-length")}
            upstream.request(method, path, body=body, headers=keep)
            answer = upstream.getresponse()
            data = answer.read()
            out = {k: v for k, v in answer.getheaders()
                   if k.lower() not in ("connection", "transfer-encoding", "content-length")}
            return answer.status, out, data
        finally:
            upstream.close()

    def _answer(self, conn: socket.socket, status: int, headers: dict[str, str], body: bytes) -> None:
        lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        conn.sendall("\r\n".join(lines).encode("latin-1") + body)

    def _publish(self, record: Request, request: dict) -> None:
        if not self.events_queue or not record.send_key:
            return
        sqs, url = self.events_queue
        email = (request.get("Destination", {}).get("ToAddresses") or [""])[0]
        sqs.send_message(QueueUrl=url, MessageBody=send_event_body(record.send_key, record.message_id, email,
                                                                   record.wall))


def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client closed before sending a request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), 0))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, path, headers, body


def _wait_for_hang_up(conn: socket.socket, longest: float) -> None:
    """Say nothing until the client gives up (its read timeout) and closes, or ``longest``."""
    conn.settimeout(longest)
    try:
        while conn.recv(65536):
            pass
    except (TimeoutError, OSError):
        pass


def _reset(conn: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0) rather than a FIN: the client sees a connection reset."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
