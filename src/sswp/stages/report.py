"""`sswp report`: gather every stage's metrics over all seeds into results/."""

from __future__ import annotations

import argparse
import logging

from sswp.config.params import Params
from sswp.pipeline import atomic
from sswp.pipeline.machine import MACHINE_JSON, machine_json
from sswp.pipeline.paths import RESULTS_DIR
from sswp.report.build import build
from sswp.report.gather import gather

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """report takes everything from params.yaml and the metric files."""


def run(params: Params, args: argparse.Namespace) -> None:
    outputs = build(params, gather(params))
    outputs[MACHINE_JSON] = machine_json(params.runtime.portable_numerics)
    for path, content in outputs.items():
        if isinstance(content, bytes):
            atomic.write_bytes(path, content)
        else:
            atomic.write_text(path, content)
    log.info(
        "report: %d architectures, %d label ratios, %d seeds -> %s",
        len(params.train.trained()),
        len(params.finetune.label_ratios),
        len(params.seeds),
        RESULTS_DIR,
    )
