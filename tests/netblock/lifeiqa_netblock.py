"""Blocks internet sockets in the test session and every Python process it starts.

The test session installs it and puts this folder on PYTHONPATH, so that subprocesses (the CLI,
fresh interpreters) install it at start-up through sitecustomize.py. Unix sockets and loopback
stay allowed: only an attempt to reach another host fails, loudly.
"""

import socket

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOCAL = {"localhost", "127.0.0.1", "::1", "", None}


class NetworkBlockedError(RuntimeError):
    pass


def _check(host) -> None:
    if host not in _LOCAL and not str(host).startswith("127."):
        raise NetworkBlockedError(f"network access blocked in tests (tried {host!r})")


def _connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(address[0])
    return _real_connect(self, address)


def _connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(address[0])
    return _real_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    _check(host if not isinstance(host, bytes) else host.decode())
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.getaddrinfo = _getaddrinfo
