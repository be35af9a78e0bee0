"""The container image, built and run: docker/Dockerfile with only its base replaced (a local
Ubuntu 24.04, the CUDA base's release and Python), built with podman, runs the tiny pipeline
as its non-root user on a mounted checkout and writes what the venv writes.

`make image-test` runs this (as root: it installs podman, runc and debootstrap, makes the
base, builds a ~7 GB image and removes it all again); `make test` skips it.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest
from image_support import (
    ENABLED,
    REPO,
    STAGES,
    Podman,
    dockerfile_arg,
    probe_image,
    probe_venv,
)

pytestmark = pytest.mark.skipif(
    not ENABLED, reason="builds the image with podman as root: run `make image-test`"
)

# Wall-clock fields differ between any two runs; everything else must match exactly.
TIMING_KEYS = {"search_hours", "train_hours"}


def _results(root: Path) -> dict[str, object]:
    """A run's genotypes and metrics (timing fields removed)."""
    out: dict[str, object] = {}
    for path in sorted((root / "artifacts" / "search").glob("*/*/genotype.json")):
        out[str(path.relative_to(root))] = json.loads(path.read_text())
    for path in sorted((root / "metrics").rglob("*.json")):
        data = json.loads(path.read_text())
        out[str(path.relative_to(root))] = {k: v for k, v in data.items() if k not in TIMING_KEYS}
    return out


def _records(root: Path) -> dict[str, dict]:
    """Each stage's provenance record: what made it (params, code, command)."""
    return {
        str(path.relative_to(root)): {
            key: record[key] for key in ("stage", "command", "params", "code")
        }
        for path in sorted(root.rglob("provenance.json"))
        if (record := json.loads(path.read_text()))
    }


def test_image_runs_the_tiny_pipeline_with_the_venvs_results(venv_run, image_run):
    venv, image = _results(venv_run), _results(image_run)
    stages = {" ".join(stage) for stage in STAGES}
    assert {record["command"].removeprefix("sswp ") for record in _records(venv_run).values()} == (
        stages
    )
    assert "metrics/finetune/preserved-0.5-seed-0.json" in venv
    assert len([name for name in venv if name.endswith("genotype.json")]) == 3
    assert image == venv
    # Same params, same code, same commands: either run's outputs are current for the other.
    assert _records(image_run) == _records(venv_run)
    # The prepared data (every file's digest is in prepare's record) is the same too.
    prepared = "data/prepared/provenance.json"
    assert (image_run / prepared).read_bytes() == (venv_run / prepared).read_bytes()


def test_image_runs_as_its_non_root_user(podman: Podman, image, image_user, image_run):
    assert image_user != 0
    assert probe_image(podman, image, image_run)["uid"] == image_user
    written = [path for path in image_run.rglob("*") if path.match("artifacts/*/*/*")]
    assert written and {path.stat().st_uid for path in written} == {image_user}


def test_image_runs_the_mounted_checkouts_code(podman: Podman, image, venv_run, image_run):
    inside = probe_image(podman, image, image_run)
    assert inside["package"] == "/work/src/sswp/__init__.py"
    # The checkout copies differ from the image's own copy of the package, and the image
    # hashes (and runs) the mounted one: the venv's digests for the same checkout.
    assert inside["code"] == probe_venv(venv_run)["code"]
    assert inside["code"] != probe_venv(None)["code"]


def test_image_copy_of_the_package_is_the_checkout_it_was_built_from(podman, image):
    # Nothing mounted at /work: the installed copy runs, and it hashes like this checkout.
    inside = probe_image(podman, image, None)
    assert inside["package"].startswith("/opt/venv/")
    assert inside["code"] == probe_venv(None)["code"]


def test_image_python_is_the_one_the_lock_is_compiled_for(podman, image):
    header = (REPO / "requirements.lock").read_text().split("\n", 2)[1]
    lock_python = re.search(r"--python-version[ =](\S+)", header)[1]
    assert probe_image(podman, image, None)["python"] == lock_python
    assert lock_python == dockerfile_arg("PYTHON_VERSION")


def test_the_image_saves_to_an_oci_archive_for_apptainer(podman: Podman, image, tmp_path):
    """The route to a SIF without a Docker daemon (`make sif`): `podman save` to an OCI
    archive that holds the image whole, which `apptainer build` reads (docker/apptainer.def)."""
    archive = tmp_path / "sswp-image.tar"
    podman("save", "--format", "oci-archive", "-o", str(archive), image)
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> dict:
            algorithm, value = digest.split(":")
            return json.load(tar.extractfile(f"blobs/{algorithm}/{value}"))

        (entry,) = json.load(tar.extractfile("index.json"))["manifests"]
        assert image.split(":")[-1] in entry["annotations"]["org.opencontainers.image.ref.name"]
        manifest = blob(entry["digest"])
        config = blob(manifest["config"]["digest"])["config"]
        assert config["Entrypoint"] == ["sswp"]
        version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
        assert config["Labels"]["org.opencontainers.image.version"] == version[1]
        names = set(tar.getnames())
        for layer in manifest["layers"]:
            algorithm, value = layer["digest"].split(":")
            assert f"blobs/{algorithm}/{value}" in names
