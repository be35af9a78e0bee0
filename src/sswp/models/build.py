"""The child network of a run: the genotype of an architecture (a search snapshot of one
seed, or a reference), started from random, the search's preserved, or the two-stage
baseline's pre-trained weights, each read from the run folder with an error that names
the command remaking a missing or broken file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sswp.config.params import Params
from sswp.errors import SswpError
from sswp.models.child import BatchNormAffinity, ChildNetwork, MissingWeights, inherit_weights
from sswp.nas.genotype import Genotype
from sswp.nas.reference import REFERENCES, reference_genotype
from sswp.nas.supernet import search_space
from sswp.pipeline.paths import (
    GENOTYPE_FILE,
    MODEL_FILE,
    SUPERNET_FILE,
    artifact_dir,
    seed_tag,
    snapshot_dir,
)

# Heads are new in every run that starts from other weights.
HEAD_PREFIXES = ("classifier.", "auxiliary.")


def pretrain_model_path(seed: int) -> Path:
    return artifact_dir("pretrain", seed_tag(seed)) / MODEL_FILE


def genotype_of(params: Params, architecture: str) -> Genotype:
    """The genotype of a reference architecture, or of this seed's search snapshot."""
    if architecture in REFERENCES:
        return reference_genotype(architecture, params.search.layers)
    path = snapshot_dir(params.seed, architecture) / GENOTYPE_FILE
    if not path.is_file():
        raise SswpError(f"genotype {path} not found; run `sswp search --seed {params.seed}` first")
    genotype = Genotype.load(path)
    if genotype.layers != params.search.layers:
        raise SswpError(
            f"genotype {path} has {genotype.layers} cells but search.layers = "
            f"{params.search.layers}; rerun `sswp search --seed {params.seed}`"
        )
    return genotype


def input_files(params: Params, architecture: str, init: str) -> dict[str, Path]:
    """The files a run reads besides the data: their digests key its checkpoint."""
    files: dict[str, Path] = {}
    if architecture not in REFERENCES:
        files["genotype"] = snapshot_dir(params.seed, architecture) / GENOTYPE_FILE
    if init == "preserved":
        files["supernet"] = snapshot_dir(params.seed, architecture) / SUPERNET_FILE
    if init == "two_stage":
        files["pretrained"] = pretrain_model_path(params.seed)
    return files


def _load_weights(path: Path, rerun: str) -> dict[str, Any]:
    if not path.is_file():
        raise SswpError(f"weights {path} not found; run `{rerun}` first")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise SswpError(
            f"cannot read weights {path} ({type(exc).__name__}); rerun `{rerun}`"
        ) from exc
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise SswpError(f"{path} holds no state_dict; rerun `{rerun}`")
    return blob


def load_supernet_state(params: Params, architecture: str) -> dict[str, torch.Tensor]:
    """The snapshot's supernet weights, checked against this run's search space."""
    path = snapshot_dir(params.seed, architecture) / SUPERNET_FILE
    rerun = f"sswp search --seed {params.seed}"
    blob = _load_weights(path, rerun)
    sp = params.search
    expected = search_space(sp.layers, sp.channels, sp.stem)
    if blob.get("search_space") != expected:
        raise SswpError(
            f"{path} comes from another search space ({blob.get('search_space')}); this run "
            f"expects {expected}: rerun `{rerun}` with these params"
        )
    return blob["state_dict"]


def _bn_affine_keys(model: nn.Module) -> set[str]:
    return {
        f"{name}.{part}"
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine
        for part in ("weight", "bias")
    }


def load_pretrained_backbone(child: ChildNetwork, seed: int) -> None:
    """The two-stage baseline's backbone (everything but the heads) into `child`.

    A backbone pre-trained with non-affine BN (pretrain.bn_affine: false) has no gamma/beta:
    the child's start at gamma=1, beta=0, the same function, as in the original's finetuning.
    """
    path = pretrain_model_path(seed)
    rerun = f"sswp pretrain --seed {seed}"
    blob = _load_weights(path, rerun)
    if blob.get("genotype") != child.genotype.to_json():
        raise SswpError(f"{path} was pre-trained on another architecture; rerun `{rerun}`")
    state = child.state_dict()
    saved = blob["state_dict"]
    backbone = {k for k in state if not k.startswith(HEAD_PREFIXES)}
    identity_bn = (backbone & _bn_affine_keys(child)) - saved.keys()
    missing = sorted(backbone - saved.keys() - identity_bn)
    present = backbone & saved.keys()
    if missing or any(saved[k].shape != state[k].shape for k in present):
        raise SswpError(
            f"{path} does not fit this network ({len(missing)} missing); rerun `{rerun}`"
        )
    state.update({k: saved[k] for k in present})
    for key in identity_bn:
        state[key] = torch.ones_like(state[key]) if key.endswith("weight") else state[key] * 0
    child.load_state_dict(state)


def build_child(
    params: Params,
    num_classes: int,
    architecture: str,
    init: str,
    auxiliary: bool,
    affine_cells: bool = True,
) -> ChildNetwork:
    """The child network of `architecture` for params.seed, started from `init` weights.

    `affine_cells` false makes every BN in the cells non-affine (two-stage pre-training).
    """
    if init != "random" and architecture in REFERENCES:
        raise SswpError(
            f"reference architecture {architecture!r} has no {init} weights; "
            "use a search snapshot (final, highest_acc, lowest_loss) or init random"
        )
    model = ChildNetwork(
        genotype_of(params, architecture),
        params.search.channels,
        num_classes,
        auxiliary=auxiliary,
        stem=params.search.stem,
        bn=BatchNormAffinity(cells=affine_cells, pools=params.child.pool_bn_affine),
    )
    if init == "preserved":
        try:
            inherit_weights(model, load_supernet_state(params, architecture))
        except MissingWeights as exc:
            path = snapshot_dir(params.seed, architecture) / SUPERNET_FILE
            shown = ", ".join(exc.keys[:5]) + (", ..." if len(exc.keys) > 5 else "")
            raise SswpError(
                f"{path} lacks {len(exc.keys)} tensors the preserved network needs ({shown}); "
                f"rerun `sswp search --seed {params.seed}`"
            ) from exc
    elif init == "two_stage":
        load_pretrained_backbone(model, params.seed)
    return model
