"""The kept shell's protocol (devices.kept) against a scripted channel: pure logic only.
The real thing (a real sshd, a real sh) is in tests/integration/test_devices_lab.py."""

from __future__ import annotations

import re

import pytest

from devices import kept
from devices.metrics import kept_command
from devices.ssh import CommandTimeout


class ScriptedChannel:
    """Answers each command line sent with the chunks `answer(command)` returns."""

    def __init__(self, answer):
        self.answer = answer
        self.pending: list[bytes] = []
        self.sent: list[str] = []
        self.closed = False
        self.eof_received = False

    def exec_command(self, command):
        self.sent.append(command)

    def sendall(self, data: bytes):
        text = data.decode()
        self.sent.append(text)
        nonce = re.search(r"@@kept-done %s\\n' (\w+)", text).group(1)
        self.pending.extend(self.answer(text, nonce))

    def settimeout(self, _t):
        pass

    def recv(self, _n):
        if not self.pending:
            raise TimeoutError()
        chunk = self.pending.pop(0)
        if chunk == b"EOF":
            self.eof_received = True
            return b""
        return chunk

    def close(self):
        self.closed = True


class Transport:
    def __init__(self, channel):
        self.channel = channel

    def open_session(self, timeout=None):
        return self.channel


def _shell(answer):
    channel = ScriptedChannel(answer)
    return kept.KeptShell(Transport(channel), "PRELUDE", timeout=1), channel


def test_output_split_over_chunks_is_joined_and_the_marker_removed():
    def answer(text, nonce):
        if "PRELUDE" in text:
            return [f"login noise\n@@kept-done {nonce}\n".encode()]
        return [b"@@a\n1\n", b"@@b\n2", f"\n\n@@kept-done {nonce}\n".encode()]

    shell, channel = _shell(answer)
    assert channel.sent[0] == "exec sh"
    assert channel.sent[1].startswith("exec 2>/dev/null\nPRELUDE")
    assert shell.call("main", timeout=1) == "@@a\n1\n@@b\n2\n"
    assert shell.alive


def test_a_marker_with_another_nonce_does_not_end_the_call():
    def answer(text, nonce):
        if "PRELUDE" in text:
            return [f"\n@@kept-done {nonce}\n".encode()]
        return [b"x\n@@kept-done 0000\n", f"y\n@@kept-done {nonce}\n".encode()]

    shell, _ = _shell(answer)
    assert shell.call("main", timeout=1) == "x\n@@kept-done 0000\ny"


def test_a_shell_that_ends_raises_shell_gone_and_is_closed():
    def answer(text, nonce):
        if "PRELUDE" in text:
            return [f"\n@@kept-done {nonce}\n".encode()]
        return [b"partial", b"EOF"]

    shell, channel = _shell(answer)
    with pytest.raises(kept.ShellGone):
        shell.call("main", timeout=1)
    assert channel.closed


def test_no_answer_within_the_timeout_raises_command_timeout_and_closes():
    def answer(text, nonce):
        if "PRELUDE" in text:
            return [f"\n@@kept-done {nonce}\n".encode()]
        return []

    shell, channel = _shell(answer)
    with pytest.raises(CommandTimeout):
        shell.call("main", timeout=0.05)
    assert channel.closed


@pytest.mark.parametrize(
    "root", ["/srv/docker; rm -rf /", "$(reboot)", "`id`", "/a b'c\"d", "/x\n touch /tmp/p"]
)
def test_the_poll_command_quotes_every_argument(root):
    import shlex

    command = kept_command(["0", "skip", root])
    inner = command[len("out=$(main ") : command.index("); printf")]
    assert shlex.split(inner) == ["0", "skip", root]
