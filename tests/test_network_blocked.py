import socket
import subprocess
import sys

import pytest
from lifeiqa_netblock import NetworkBlockedError


def test_sockets_are_blocked_in_the_session():
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("huggingface.co", 443), timeout=1)


def test_sockets_are_blocked_in_subprocesses():
    code = "import socket; socket.create_connection(('pypi.org', 443), timeout=1)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "network access blocked in tests" in result.stderr
