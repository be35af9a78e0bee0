"""A DVC remote over SSH, for real: an OpenSSH server on localhost with a throwaway key.

Clone A runs a tiny pipeline and pushes its artifacts through dvc-ssh; a fresh clone B pulls
them and DVC has nothing to do, with the outputs that git and DVC carry byte-identical to
A's. A push killed partway and run again leaves a remote that pulls correctly, and a cache
file corrupted on the remote is caught on pull, leaving nothing corrupt in the workspace. An
experiment pushed with `dvc exp push` comes back whole in another clone with `dvc exp pull`.

`make remote-test` installs Debian's openssh-server and sets SSWP_REMOTE_TEST=1; without
it these tests skip. The server runs as long as this module, and stops however it ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SSHD = Path("/usr/sbin/sshd")
# What a run leaves that DVC tracks or git holds; every file of them must match A's.
OUTPUTS = ("data/prepared", "artifacts", "metrics", "results", "live")

pytestmark = pytest.mark.skipif(
    os.environ.get("SSWP_REMOTE_TEST") != "1",
    reason="needs an SSH server: `make remote-test` installs one (as root)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """An sshd on 127.0.0.1:`port` that lets in the holder of `key` as the current user."""

    def __init__(self, root: Path):
        self.root, self.port = root, _free_port()
        self.key = root / "client_key"
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                check=True,
            )
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        config = root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {root / 'host_key'}",
                    f"PidFile {root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {root / 'authorized_keys'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # its privilege-separation dir
        with open(root / "sshd.log", "w") as log:  # the child keeps its own copy
            self.process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=log)
        self._wait_until_listening()
        # The clients' known_hosts: the server's host key, as `ssh-keyscan` would give it.
        home = root / "home"
        (home / ".ssh").mkdir(parents=True)
        host_key = (root / "host_key.pub").read_text().split()[:2]
        (home / ".ssh" / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {' '.join(host_key)}\n"
        )
        self.home = home

    def _wait_until_listening(self) -> None:
        for _ in range(100):
            if self.process.poll() is not None:
                log = (self.root / "sshd.log").read_text()
                raise RuntimeError(f"sshd exited with {self.process.returncode}: {log}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("sshd did not listen within 10 s")

    def url(self, folder: Path) -> str:
        return f"ssh://{os.environ.get('USER', 'root')}@127.0.0.1:{self.port}{folder}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    if not SSHD.exists():
        pytest.fail(f"{SSHD} not found: `make remote-test` installs openssh-server")
    running = Server(tmp_path_factory.mktemp("sshd"))
    try:
        yield running
    finally:
        running.stop()


def _run(args: list[str], cwd: Path, server: Server, check: bool = True):
    env = {
        **os.environ,
        "HOME": str(server.home),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
    }
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _add_remote(clone: Path, server: Server, name: str, folder: Path, default: bool) -> None:
    """A team remote as the README adds one: verified downloads; the key stays local."""
    add = ["dvc", "remote", "add", *(["-d"] if default else []), name, server.url(folder)]
    _run(add, clone, server)
    _run(["dvc", "remote", "modify", name, "verify", "true"], clone, server)
    _run(["dvc", "remote", "modify", "--local", name, "keyfile", str(server.key)], clone, server)


def _clone(origin: Path, dest: Path, server: Server) -> Path:
    _run(["git", "clone", "-q", str(origin), str(dest)], origin.parent, server)
    _run(["dvc", "remote", "modify", "--local", "shared", "keyfile", str(server.key)], dest, server)
    return dest


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for top in OUTPUTS
        for path in sorted((root / top).rglob("*"))
        if path.is_file()
    }


def _tracked(root: Path) -> dict[str, bytes]:
    """The outputs that git or DVC carry: TensorBoard's event files stay where they were made."""
    return {name: data for name, data in _files(root).items() if "/tensorboard/" not in name}


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, server, tiny_config, repo_copy) -> tuple[Path, Path]:
    """Clone A after `dvc repro` and `dvc push` to the shared remote, and that remote."""
    root = tmp_path_factory.mktemp("remote")
    a = repo_copy(root / "A", {**tiny_config, "seeds": [0]})
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "code"]):
        _run(command, a, server)
    _run(["dvc", "repro", "-q"], a, server)
    storage = root / "storage"
    _add_remote(a, server, "shared", storage, default=True)
    _run(["git", "add", "-A"], a, server)
    _run(["git", "commit", "-qm", "a run"], a, server)
    _run(["dvc", "push"], a, server)
    return a, storage


def test_a_fresh_clone_pulls_everything_and_has_nothing_to_do(pushed, server, tmp_path):
    a, _ = pushed
    b = _clone(a, tmp_path / "B", server)
    _run(["dvc", "pull"], b, server)
    status = _run(["dvc", "status"], b, server).stdout
    assert "Data and pipelines are up to date" in status, status
    assert _tracked(b) == _tracked(a)
    assert not (b / ".sswp").exists() and not (b / ".snakemake" / "sswp").exists()


def test_a_push_killed_partway_then_rerun_leaves_a_complete_remote(pushed, server, tmp_path):
    a, _ = pushed
    storage = tmp_path / "second"
    _add_remote(a, server, "second", storage, default=False)
    # Enough files that the push, one at a time, is still running when it is killed.
    many = a / "many"
    many.mkdir(exist_ok=True)
    for index in range(400):
        (many / f"{index}.bin").write_bytes(os.urandom(4096))
    _run(["dvc", "add", "-q", "many"], a, server)
    push = ["dvc", "push", "-r", "second", "-j", "1"]
    env = {**os.environ, "HOME": str(server.home), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(push, cwd=a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(storage.rglob("*"))) < 20 and time.monotonic() < deadline:
        assert proc.poll() is None, "the push finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    total = len(list((a / ".dvc" / "cache").rglob("*")))
    assert 0 < len([p for p in storage.rglob("*") if p.is_file()]) < total  # partway
    _run(push, a, server)
    c = tmp_path / "C"
    _run(["git", "clone", "-q", str(a), str(c)], tmp_path, server)
    _add_remote(c, server, "second", storage, default=False)  # A's is not committed
    shutil.copy(a / "many.dvc", c / "many.dvc")  # not committed: only the remote has `many`
    _run(["dvc", "pull", "-r", "second"], c, server)
    assert _tracked(c) == _tracked(a)
    for path in (a / "many").iterdir():
        assert (c / "many" / path.name).read_bytes() == path.read_bytes()
    status = _run(["dvc", "status"], c, server).stdout
    assert "Data and pipelines are up to date" in status, status


def test_a_file_corrupted_on_the_remote_is_caught_on_pull(pushed, server, tmp_path):
    a, storage = pushed
    victim = max(
        (p for p in storage.rglob("*") if p.is_file() and not p.name.endswith(".dir")),
        key=lambda p: p.stat().st_size,
    )
    original = victim.read_bytes()
    try:
        victim.write_bytes(b"corrupted" + original[9:])
        d = _clone(a, tmp_path / "D", server)
        pull = _run(["dvc", "pull"], d, server, check=False)
        assert pull.returncode != 0
        message = pull.stdout + pull.stderr
        # DVC drops the file whose hash does not match and names what it could not check out.
        assert "Checkout failed" in message, message
        # Whatever landed in the workspace is byte for byte A's.
        expected = _files(a)
        for name, content in _files(d).items():
            assert content == expected[name], name
    finally:
        victim.write_bytes(original)


def test_an_experiment_travels_through_the_git_and_dvc_remotes(pushed, server, tmp_path):
    """`dvc exp push` sends an experiment's commit to a git remote and its artifacts to the
    DVC remote; another clone pulls it by name and has its outputs, with nothing to do."""
    a, _ = pushed
    hub = tmp_path / "hub.git"
    _run(["git", "init", "-q", "--bare", str(hub)], tmp_path, server)
    e = _clone(a, tmp_path / "E", server)
    _run(["dvc", "pull"], e, server)
    _run(["dvc", "exp", "run", "-n", "lr-0.07", "-S", "finetune.lr=0.07"], e, server)
    _run(["dvc", "exp", "push", str(hub), "lr-0.07"], e, server)
    f = _clone(a, tmp_path / "F", server)
    _run(["dvc", "exp", "pull", str(hub), "lr-0.07"], f, server)
    assert "lr-0.07" in _run(["dvc", "exp", "list"], f, server).stdout
    _run(["dvc", "exp", "apply", "lr-0.07"], f, server)
    status = _run(["dvc", "status"], f, server).stdout
    assert "Data and pipelines are up to date" in status, status
    assert _tracked(f) == _tracked(e)
    assert _tracked(f) != _tracked(a)
