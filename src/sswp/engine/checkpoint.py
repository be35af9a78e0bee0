"""Resumable stages: atomic checkpoints keyed by the stage's params and inputs.

A checkpoint lives in .checkpoints/<stage>/<key>/, outside every declared output, because
DVC and Snakemake delete declared outputs before they rerun a stage. The key is a hash of
exactly what determines the stage's result (params, inputs and the digest of the code the
stage runs), so a rerun with the same ones resumes and a changed one starts over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

import torch

from sswp.errors import SswpError
from sswp.pipeline import atomic
from sswp.pipeline.paths import CHECKPOINT_DIR

log = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.pt"
KEY_FILE = "key.json"


class Checkpointer:
    """Load, save (atomically) and clear one stage run's checkpoint.

    At an epoch's end it saves only when `every_s` seconds have passed since the last save
    (or since it was made): a small network's epochs are short, and a save after each one
    adds up. A stop signal always saves (see `halt_if_requested`).
    """

    def __init__(
        self,
        name: str,
        key_material: dict[str, Any],
        keep_old: bool = False,
        writer: bool = True,
        every_s: float = 0.0,
    ):
        text = json.dumps(key_material, sort_keys=True, default=str)
        self.key_material = key_material
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.stage_dir = CHECKPOINT_DIR / name
        self.dir = self.stage_dir / self.key
        self.path = self.dir / CHECKPOINT_FILE
        self.keep_old = keep_old
        self.writer = writer  # only DDP rank 0 writes; every rank reads
        self.every_s = every_s
        self._saved_at = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None to start fresh (then stale keys are removed unless kept)."""
        if not self.path.is_file():
            self._explain_other_keys()
            if self.writer and not self.keep_old:
                self._remove_other_keys()
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or foreign files raise several types
            raise SswpError(
                f"checkpoint {self.path} is unreadable ({type(exc).__name__}); "
                f"delete {self.dir} to start this stage over"
            ) from exc
        if not isinstance(state, dict) or not all(
            isinstance(state.get(k), int) for k in ("epoch", "step")
        ):
            raise self.unusable("it has no epoch and step")
        return state

    def unusable(self, why: str) -> SswpError:
        """The error for a checkpoint that loads but does not fit this stage."""
        return SswpError(
            f"checkpoint {self.path} does not fit this stage ({why}); "
            f"delete {self.dir} to start this stage over"
        )

    def save(self, state: dict[str, Any]) -> None:
        """Write to a temp file and rename: a failed write leaves the previous checkpoint."""
        if not self.writer:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        # The key first: a run killed in between leaves no checkpoint that cannot say its key.
        key_file = self.dir / KEY_FILE
        if not key_file.exists():
            atomic.write_json(key_file, self.key_material)
        atomic.torch_save(self.path, state)
        self._saved_at = time.monotonic()

    def save_at_epoch_end(self, state: Callable[[], dict[str, Any]]) -> None:
        """Save `state()` if `every_s` seconds have passed since the last save."""
        if time.monotonic() - self._saved_at >= self.every_s:
            self.save(state())

    def clear(self) -> None:
        """Called once the stage's outputs are written; kept if runtime.keep_checkpoints."""
        if not self.writer or self.keep_old or not self.dir.exists():
            return
        shutil.rmtree(self.dir)
        for parent in self.dir.parents:
            if parent == CHECKPOINT_DIR.parent or any(parent.iterdir()):
                break
            parent.rmdir()

    def _explain_other_keys(self) -> None:
        """Say why an earlier run's checkpoint is not resumed: which of its key parts differ."""
        if not self.stage_dir.is_dir():
            return
        for other in sorted(self.stage_dir.glob(f"*/{KEY_FILE}")):
            try:
                material = json.loads(other.read_text())
            except (OSError, ValueError):
                continue
            differ = sorted(
                k
                for k in material.keys() | self.key_material.keys()
                if json.dumps(material.get(k), sort_keys=True, default=str)
                != json.dumps(self.key_material.get(k), sort_keys=True, default=str)
            )
            what = "the code changed" if differ == ["code"] else f"{', '.join(differ)} changed"
            log.info("starting over, not resuming %s: %s since it was saved", other.parent, what)

    def _remove_other_keys(self) -> None:
        if not self.stage_dir.is_dir():
            return
        for stale in self.stage_dir.iterdir():
            if stale.is_dir() and stale.name != self.key:
                log.info("removing checkpoint %s of other params", stale)
                shutil.rmtree(stale)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
