import socket

import pytest
from pytest_socket import SocketConnectBlockedError


def test_tests_cannot_reach_the_network():
    # a documentation-only address (TEST-NET-3): the guard refuses before any packet is sent
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("203.0.113.1", 443), timeout=1)


def test_loopback_stays_open_for_our_own_servers():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()
