"""Is this process cut off from every network but loopback?

``python -m tests.hub.isolation`` exits 0 only when a loopback server answers and no outside
address or name can be reached; ``.ci/run`` runs it, then the test suite, inside
``unshare --net`` with only ``lo`` up (:data:`ISOLATE`), as the proof that no test reaches the network.
"""
from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

# Run a command in a fresh network namespace (an unprivileged user namespace maps the caller to
# root there, so no real root is needed) with only loopback up: ISOLATE + [program, args...].
ISOLATE = ["unshare", "--map-root-user", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "isolated"]
# Public addresses that answer from any connected machine (Cloudflare and Google DNS, the hub).
OUTSIDE = (("1.1.1.1", 443), ("8.8.8.8", 53), ("2606:4700:4700::1111", 443))
OUTSIDE_NAMES = ("huggingface.co", "pypi.org")


def reachable_outside(timeout: float = 3.0) -> list[str]:
    """Every outside address or name this process can reach (empty when isolated)."""
    reached = []
    for host, port in OUTSIDE:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                reached.append(f"{host}:{port}")
        except OSError:
            pass
    for name in OUTSIDE_NAMES:
        try:
            socket.getaddrinfo(name, 443)
            reached.append(f"name {name}")
        except OSError:
            pass
    return reached


def loopback_answers() -> bool:
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.0 204")
    finally:
        server.server_close()


def main() -> int:
    reached = reachable_outside()
    loopback = loopback_answers()
    print(f"loopback answers: {loopback}; outside reachable: {reached or 'nothing'}")
    return 0 if loopback and not reached else 1


if __name__ == "__main__":
    sys.exit(main())
