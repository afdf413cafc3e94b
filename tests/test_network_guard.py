import os
import socket
import subprocess
import sys

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


# a process of its own, with no guard: what sfumato itself does, audited
AUDITED = """
import sys, time
reached = []
out = ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg")
sys.addaudithook(lambda e, a: reached.append((e, a)) if e in out else None)
from sfumato.cli import main
sys.argv = ["sfumato", "generate", "a red circle", "-W", "64", "-H", "64", "-s", "2",
            "--dtype", "int8", "--model", sys.argv[1], "-o", sys.argv[2]]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
time.sleep(1)  # their reports go from a thread of their own
print("REACHED", reached)
"""


def test_openvino_and_nncf_send_no_usage_reports(tiny_models, tmp_path):
    """Importing OpenVINO, converting a model and NNCF's quantization each report to Google
    Analytics unless a consent file in the home folder says no, and write a client id there:
    never from sfumato (sfumato/usage_reports.py)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SFUMATO_BACKEND"} | {"HOME": str(home)}
    picture = tmp_path / "int8.png"
    model = str(tiny_models["sd15"]["folder"])
    done = subprocess.run(
        [sys.executable, "-c", AUDITED, model, str(picture)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert picture.is_file()
    assert "REACHED []" in done.stdout
    assert list(home.iterdir()) == []  # no ~/intel/openvino_ga_cid
