"""What the image test runs on: podman with its own storage and this host's runtime flags,
the Ubuntu 24.04 keyring, the wheelhouse of the host's wheels for the build, and a probe of
what a process runs (its user, Python, package and code digests).

No containers.conf is written: every podman command passes the runtime and ulimits it needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
BIN = Path(sys.executable).parent
ENABLED = os.environ.get("SSWP_IMAGE_TEST") == "1"

# The release of the CUDA base (Ubuntu 24.04), from Ubuntu's archive. Its signing keys come
# from the release's ubuntu-keyring package, checked against this digest (it holds the
# archive key F6ECB3762474EDA9D21B7022871920D1991BC93C).
SUITE = "noble"
MIRROR = "http://archive.ubuntu.com/ubuntu"
SECURITY_MIRROR = "http://security.ubuntu.com/ubuntu"
KEYRING_DEB = f"{MIRROR}/pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb"
KEYRING_SHA256 = "36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8"

IMAGE_TAG = "localhost/sswp-image-test/sswp:test"
# crun cannot start containers on hybrid cgroups, and podman's default ulimits exceed what
# root may set on such hosts.
RUNTIME_FLAGS = ("--runtime", "runc", "--ulimit", "nofile=20000:20000")
RUNTIME_FLAGS += ("--ulimit", "nproc=32768:32768")
# The most disk that a build of the image took, in GB (measured with df while `make
# image-test` ran): the environment's 7 GB layer is held three times while it is committed.
BUILD_DISK_GB = 28
# Where the build's pip finds the test's wheelhouse and the host's CA bundle (mounted).
BUILD_MOUNT = "/run/sswp-image-test"

# The tiny pipeline: prepare, search and one finetune of the tests' tiny config.
STAGES = (
    ("prepare",),
    ("search", "--seed", "0"),
    ("finetune", "--seed", "0", "--init", "preserved", "--ratio", "0.5"),
)
# Appended to a module that every stage hashes, in both checkout copies: the image's own copy
# of the package lacks it, so a run that used that copy would record another code digest.
CHECKOUT_CHANGE = (
    "src/sswp/pipeline/provenance.py",
    "\n# This checkout differs from the image's copy.\n",
)
# Prints what a process runs: its uid, Python, the package it imports and its code digests.
PROBE = """
import json, os, sys
import sswp
from sswp.pipeline.provenance import code_digest
from sswp.pipeline.contract import STAGES
print(json.dumps({
    "uid": os.getuid(),
    "python": "%d.%d" % sys.version_info[:2],
    "package": sswp.__file__,
    "code": {stage: code_digest(stage) for stage in sorted(STAGES)},
}))
"""


def log(message: str) -> None:
    """Progress on the terminal (`make image-test` runs pytest with -s)."""
    print(f"[image-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], *, log_file: Path | None = None, **kwargs) -> str:
    """Run a command; on failure the assertion shows its output (or its log's end)."""
    if log_file is None:
        proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        output = proc.stdout + proc.stderr
    else:
        with open(log_file, "w") as handle:
            proc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, **kwargs)
        output = log_file.read_text()[-6000:]
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}"
    return proc.stdout if log_file is None else output


def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)", DOCKERFILE.read_text(), re.M)
    assert match, f"docker/Dockerfile has no `ARG {name}=`"
    return match[1]


def pip_config() -> dict[str, list[str]]:
    """The host pip's settings by name (find-links, index-url, cert, ...), every scope."""
    listing = run([sys.executable, "-m", "pip", "config", "list"])
    settings: dict[str, list[str]] = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        settings.setdefault(key.rsplit(".", 1)[-1], []).extend(value.strip("'\"").split())
    return settings


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _local_wheels(lock: Path) -> dict[str, Path]:
    """{sha256: file} of the wheels on this host whose digest the lock lists.

    Looks in the host pip's find-links folders and file:// indexes, so the build downloads
    only what this host lacks; pip checks each file against the lock's hashes again.
    """
    wanted: dict[str, set[str]] = {}
    hashes: set[str] = set()
    for line in lock.read_text().splitlines():
        if pin := re.match(r"([A-Za-z0-9_.-]+)==", line):
            hashes = wanted.setdefault(_norm(pin[1]), set())
        hashes.update(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    found: dict[str, Path] = {}
    config = pip_config()
    for location in config.get("find-links", []):
        folder = Path(location.removeprefix("file://"))
        for wheel in folder.glob("*.whl") if folder.is_dir() else ():
            if _norm(wheel.name.split("-")[0]) in wanted:
                digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                if digest in wanted[_norm(wheel.name.split("-")[0])]:
                    found[digest] = wheel
    for index in config.get("index-url", []) + config.get("extra-index-url", []):
        if not index.startswith("file://"):
            continue
        for name, digests in wanted.items():
            page = Path(index.removeprefix("file://"), name, "index.html")
            if page.is_file():
                for href, digest in re.findall(r'href="([^"#]+)#sha256=(\w+)"', page.read_text()):
                    wheel = (page.parent / href).resolve()
                    if digest in digests and wheel.suffix == ".whl" and wheel.is_file():
                        found[digest] = wheel
    return found


def make_wheelhouse(lock: Path, folder: Path) -> int:
    """A file:// package index of the host's wheels for the lock (links, or copies).

    pip ranks a file of this index as high as the same file on PyPI, and of equal candidates
    it takes the one found last: given as pip's extra index (after PyPI), these win, so only
    what this host lacks is downloaded. Each link carries its sha256, as PyPI's do.
    """
    (folder / "files").mkdir(parents=True)
    pages: dict[str, list[str]] = {}
    for digest, wheel in sorted(_local_wheels(lock).items(), key=lambda item: item[1].name):
        target = folder / "files" / wheel.name
        try:
            os.link(wheel, target)
        except OSError:
            shutil.copyfile(wheel, target)
        href = f"../../files/{wheel.name}#sha256={digest}"
        pages.setdefault(_norm(wheel.name.split("-")[0]), []).append(
            f'<a href="{href}">{wheel.name}</a><br>'
        )
    for project, links in pages.items():
        (folder / "simple" / project).mkdir(parents=True)
        (folder / "simple" / project / "index.html").write_text("\n".join(links) + "\n")
    return sum(len(links) for links in pages.values())


class Podman:
    """podman with a storage of its own (removed by `destroy`) and this host's runtime flags."""

    def __init__(self, root: Path):
        self.root = root
        self.prefix = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run")]

    def __call__(self, *args: str, **kwargs) -> str:
        return run([*self.prefix, *args], **kwargs)

    def destroy(self) -> None:
        """Remove every container and image of this storage, then the storage itself."""
        for args in (["rm", "--all", "--force"], ["rmi", "--all", "--force"]):
            subprocess.run([*self.prefix, *args], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        assert not self.root.exists(), f"{self.root} could not be removed (a mount left?)"


def ubuntu_keyring(folder: Path) -> Path:
    with urllib.request.urlopen(KEYRING_DEB, timeout=120) as response:
        package = response.read()
    digest = hashlib.sha256(package).hexdigest()
    assert digest == KEYRING_SHA256, f"{KEYRING_DEB}: sha256 {digest}, expected {KEYRING_SHA256}"
    (folder / "keyring.deb").write_bytes(package)
    run(["dpkg-deb", "-x", str(folder / "keyring.deb"), str(folder / "keyring")])
    return folder / "keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg"


def checkout_copy(folder: Path, config: dict, repo_copy: Callable) -> Path:
    root = repo_copy(folder, config)
    name, text = CHECKOUT_CHANGE
    assert (root / name).is_file(), (
        f"{name} is not in the checkout: CHECKOUT_CHANGE must name a module"
    )
    with open(root / name, "a") as handle:
        handle.write(text)
    return root


def probe_image(podman: Podman, image: str, checkout: Path | None) -> dict:
    """PROBE in the image, with `checkout` mounted at /work (read-only), or nothing there."""
    mount = ["--volume", f"{checkout}:/work:ro"] if checkout else []
    out = podman(
        "run", "--rm", *RUNTIME_FLAGS, "--network=none", *mount,
        "--entrypoint", "python", image, "-c", PROBE,
    )  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def probe_venv(checkout: Path | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")} if checkout else None
    return json.loads(run([sys.executable, "-c", PROBE], env=env).strip().splitlines()[-1])
