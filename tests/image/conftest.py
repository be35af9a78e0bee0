"""Fixtures of the image test: a local Ubuntu 24.04 base, the image built on it with podman,
and the same tiny pipeline run in the venv and in the image, each on its own checkout copy.

Podman keeps its images and containers in a storage of its own under a scratch folder, which
is removed at the end (even when a test fails), so nothing is left in the host's storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_support import (
    BIN,
    BUILD_DISK_GB,
    BUILD_MOUNT,
    DOCKERFILE,
    IMAGE_TAG,
    MIRROR,
    REPO,
    RUNTIME_FLAGS,
    SECURITY_MIRROR,
    STAGES,
    SUITE,
    Podman,
    checkout_copy,
    dockerfile_arg,
    log,
    make_wheelhouse,
    pip_config,
    run,
    ubuntu_keyring,
)


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    assert not missing, f"{', '.join(missing)} not installed: run `make image-test`"
    assert os.geteuid() == 0, "the image test builds and runs images as root: run it as root"
    free_gb = shutil.disk_usage("/var/tmp").free / 1e9
    assert free_gb >= BUILD_DISK_GB, (
        f"the image test needs about {BUILD_DISK_GB} GB free under /var/tmp (the build's "
        f"peak), {free_gb:.0f} GB are: free some disk, or remove old podman storage there"
    )
    scratch = Path(tempfile.mkdtemp(prefix="sswp-image-test-", dir="/var/tmp"))
    engine = Podman(scratch)
    yield engine
    engine.destroy()
    log("removed the test's images, containers and podman storage")


@pytest.fixture(scope="session")
def base_image(podman: Podman) -> str:
    """Ubuntu 24.04 (minbase, with its updates), imported as a local image: no registry.

    It takes the name of the Dockerfile's default base, the CUDA image of the same release
    and Python, in the test's own storage only: the build then runs the Dockerfile exactly
    as `make image` does, with nothing but the CUDA layers missing.
    """
    started = time.monotonic()
    work = podman.root / "base"
    work.mkdir()
    keyring = ubuntu_keyring(work)
    # Older debootstrap releases lack the noble script; noble uses the gutsy one.
    scripts = Path("/usr/share/debootstrap/scripts")
    script = scripts / SUITE if (scripts / SUITE).exists() else scripts / "gutsy"
    rootfs = work / "rootfs"
    command = ["debootstrap", "--variant=minbase", f"--keyring={keyring}", SUITE, str(rootfs)]
    run([*command, MIRROR, str(script)], log_file=work / "debootstrap.log")
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main universe\n"
        f"deb {MIRROR} {SUITE}-updates main universe\n"
        f"deb {SECURITY_MIRROR} {SUITE}-security main universe\n"
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    name = f"docker.io/{dockerfile_arg('BASE_IMAGE')}"
    podman("import", "-", name, stdin=tar.stdout)
    assert tar.wait() == 0, "tar of the base's root file system failed"
    shutil.rmtree(work)
    log(f"local Ubuntu {SUITE} base, named {name}, made in {time.monotonic() - started:.0f} s")
    return name


@pytest.fixture(scope="session")
def image(podman: Podman, base_image: str) -> str:
    """The project's image from docker/Dockerfile, its default base being the local one.

    No build argument: only the base differs from `make image`. The build's pip trusts the
    host's CA bundle and takes the host's wheels from a local index; both come in as
    mounts with a pip.conf, for this build only, so the Dockerfile stays as it is.
    """
    started = time.monotonic()
    work = podman.root / "build"
    work.mkdir()
    wheels = make_wheelhouse(REPO / "requirements.lock", work / "wheels")
    ca_bundle = (pip_config().get("cert") or ["/etc/ssl/certs/ca-certificates.crt"])[0]
    (work / "pip.conf").write_text(
        f"[global]\ncert = {BUILD_MOUNT}/ca.crt\n"
        f"extra-index-url = file://{BUILD_MOUNT}/wheels/simple\n"
    )
    log(f"building {IMAGE_TAG} ({wheels} wheels of the lock found on this host)")
    podman(
        "build",
        *RUNTIME_FLAGS,
        "--pull=never",
        "--volume",
        f"{work / 'wheels'}:{BUILD_MOUNT}/wheels:ro",
        "--volume",
        f"{ca_bundle}:{BUILD_MOUNT}/ca.crt:ro",
        "--volume",
        f"{work / 'pip.conf'}:/etc/pip.conf:ro",
        "--file",
        str(DOCKERFILE),
        "--tag",
        IMAGE_TAG,
        str(REPO),
        log_file=work / "build.log",
    )
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE_TAG).strip())
    log(f"image built in {time.monotonic() - started:.0f} s, {size / 1e9:.2f} GB")
    return IMAGE_TAG


@pytest.fixture(scope="session")
def venv_run(tmp_path_factory, tiny_config, repo_copy) -> Path:
    """The tiny pipeline in the venv, running the checkout copy's code (as Snakemake does)."""
    started = time.monotonic()
    root = checkout_copy(tmp_path_factory.mktemp("venv"), tiny_config, repo_copy)
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    for stage in STAGES:
        run([str(BIN / "sswp"), *stage], cwd=root, env=env)
    log(f"venv run done in {time.monotonic() - started:.0f} s")
    return root


@pytest.fixture(scope="session")
def image_user(podman: Podman, image: str) -> int:
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    return int(user.split(":")[0])


@pytest.fixture(scope="session")
def image_run(
    podman: Podman, image: str, image_user: int, tmp_path_factory, tiny_config, repo_copy
):
    """The same pipeline in the image, as its own user, on a checkout copy mounted at /work."""
    started = time.monotonic()
    root = checkout_copy(tmp_path_factory.mktemp("image"), tiny_config, repo_copy)
    for path in [root, *root.rglob("*")]:
        os.lchown(path, image_user, image_user)
    for stage in STAGES:
        podman(
            "run", "--rm", *RUNTIME_FLAGS, "--network=none", "-v", f"{root}:/work", image, *stage
        )
    log(f"image run done in {time.monotonic() - started:.0f} s")
    return root
