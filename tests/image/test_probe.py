"""The probe that the image test runs inside the container, run here in the venv.

`make test` does not build the image, so this keeps the probe in step with the package: a
module it imports that moved or a stage that was renamed fails here, not after a CI build.
"""

from __future__ import annotations

from image_support import probe_venv

from sswp.pipeline import contract
from sswp.pipeline.provenance import code_digest


def test_probe_runs_in_the_venv_and_hashes_every_stage():
    probe = probe_venv(None)
    assert probe["package"].endswith("src/sswp/__init__.py")
    # The same digests as this process computes: every stage, hashed from this checkout.
    assert probe["code"] == {stage: code_digest(stage) for stage in contract.STAGES}
