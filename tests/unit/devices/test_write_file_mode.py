"""A file the product writes on a device (compose.yaml with an app's secrets) has its mode
before its first byte: there is no moment in which another account of the device could read
it. Order logic only: the SFTP session is a recording stand-in (the lab tests write real
files over real SFTP)."""

from __future__ import annotations

from types import SimpleNamespace

import paramiko

from devices import compose, ssh


class _RecordingFile:
    def __init__(self, calls: list):
        self.calls = calls

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.calls.append(("close",))

    def chmod(self, mode):
        self.calls.append(("chmod", mode))

    def write(self, data):
        self.calls.append(("write", len(data)))


class _RecordingSFTP:
    def __init__(self, calls: list):
        self.calls = calls

    def open(self, path, flags):
        self.calls.append(("open", path, flags))
        return _RecordingFile(self.calls)

    def chmod(self, path, mode):
        self.calls.append(("chmod-after", path, mode))

    def posix_rename(self, old, new):
        self.calls.append(("rename", old, new))

    def close(self):
        pass


def test_the_mode_is_set_before_the_first_byte_is_written(monkeypatch):
    calls: list = []
    monkeypatch.setattr(ssh.connections, "transport", lambda target: object())
    monkeypatch.setattr(ssh.Target, "from_device", staticmethod(lambda device: None))
    monkeypatch.setattr(
        paramiko.SFTPClient, "from_transport", staticmethod(lambda t: _RecordingSFTP(calls))
    )
    device = SimpleNamespace(name="pi", address="127.0.0.1", port=22)
    shell = compose.DeviceShell(device)

    shell.write_file("/opt/homelab/app/compose.yaml", b"secret: s3cret\n", mode=0o600)

    kinds = [c[0] for c in calls]
    assert kinds == ["open", "chmod", "write", "close", "rename"], calls
    assert ("chmod", 0o600) in calls
    assert calls[0][1] == "/opt/homelab/app/compose.yaml.tmp"
    assert calls[-1] == ("rename", "/opt/homelab/app/compose.yaml.tmp", "/opt/homelab/app/compose.yaml")
