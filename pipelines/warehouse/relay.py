"""A TCP relay to the embedded Postgres, which listens on a unix socket only: BI tools (Metabase,
Superset, DBeaver) connect to 127.0.0.1:PORT and talk to the server through it, TLS and auth
included, byte for byte (`modelarts-etl db`)."""

from __future__ import annotations

import contextlib
import socket
import threading

from sqlalchemy.engine import make_url


def unix_socket_path(url: str) -> str:
    """The socket file of a `postgresql://...?host=/dir` URL (the embedded server's)."""
    parsed = make_url(url)
    folder = parsed.query.get("host")
    folder = folder[0] if isinstance(folder, tuple) else folder
    return f"{folder}/.s.PGSQL.{parsed.port or 5432}"


def relay_to_unix_socket(listener: socket.socket, socket_path: str) -> None:
    """Relay each TCP client to the embedded server's unix socket until interrupted."""

    def pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    while True:
        client, _ = listener.accept()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(socket_path)
        except OSError:
            client.close()
            server.close()
            continue
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=pipe, args=(source, target), daemon=True).start()
