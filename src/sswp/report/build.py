"""Every file of results/, built in memory from the gathered inputs, so that a missing or
malformed input leaves results/ untouched."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sswp.config.params import Params
from sswp.pipeline.contract import TWO_STAGE, tracked_params
from sswp.pipeline.paths import RESULTS_DIR
from sswp.report.arms import (
    PRESERVED,
    Arm,
    arms,
    finetune_arms,
    method_name,
    objective_name,
    ratio_label,
)
from sswp.report.budget import (
    budget_line,
    budget_markdown,
    budget_metrics,
    budget_sentence,
    budget_table,
    two_stage_budget,
)
from sswp.report.curves import Curve
from sswp.report.figures import (
    alpha_heatmap_png,
    label_ratio_png,
    learning_curves_png,
    ssl_curves_png,
    training_curves_png,
)
from sswp.report.gather import Inputs
from sswp.report.learned import (
    SslCheck,
    path_check,
    ssl_checks,
    ssl_markdown,
    ssl_metrics,
    unlearned_arms,
)
from sswp.report.metrics import headline, metrics_dict
from sswp.report.summary import Summary, summary_markdown
from sswp.report.tables import (
    comparisons_md,
    convergence_markdown,
    label_ratio_md,
    label_ratio_table,
    learning_markdown,
    learning_metrics,
    learning_table,
    main_markdown,
    main_table,
    to_csv,
)
from sswp.report.verdicts import (
    comparisons_metrics,
    comparisons_table,
    rising_cells,
    unconverged_runs,
)

MAIN_TABLE_CSV = RESULTS_DIR / "main_table.csv"
MAIN_TABLE_MD = RESULTS_DIR / "main_table.md"
LABEL_RATIO_CSV = RESULTS_DIR / "label_ratio.csv"
LABEL_RATIO_MD = RESULTS_DIR / "label_ratio.md"
LABEL_RATIO_PNG = RESULTS_DIR / "label_ratio.png"
TRAINING_CURVES_PNG = RESULTS_DIR / "training_curves.png"
ALPHA_HEATMAP_PNG = RESULTS_DIR / "alpha_heatmap.png"
BUDGET_CSV = RESULTS_DIR / "budget.csv"
BUDGET_MD = RESULTS_DIR / "budget.md"
COMPARISONS_CSV = RESULTS_DIR / "comparisons.csv"
COMPARISONS_MD = RESULTS_DIR / "comparisons.md"
LEARNING_CURVES_CSV = RESULTS_DIR / "learning_curves.csv"
LEARNING_CURVES_PNG = RESULTS_DIR / "learning_curves.png"
SUMMARY_MD = RESULTS_DIR / "summary.md"
METRICS_JSON = RESULTS_DIR / "metrics.json"
HEADLINE_JSON = RESULTS_DIR / "headline.json"
PARAMS_YAML = RESULTS_DIR / "params.yaml"
SSL_CURVES_PNG = RESULTS_DIR / "ssl_curves.png"


def arm_accuracies(
    params: Params, inputs: Inputs, key: str = "test_acc"
) -> dict[str, dict[float, list[float]]]:
    """Per-seed accuracy `key` of every arm at every ratio, as label_ratio_table wants."""
    runs = {"finetune": inputs.finetune, "linear_eval": inputs.linear_eval}
    return {
        arm.key: {
            ratio: [m[key] for m in metrics] for ratio, metrics in runs[arm.stage][arm.init].items()
        }
        for arm in arms(params.finetune.inits)
    }


def curve_panels(params: Params, inputs: Inputs) -> dict[str, dict[str, list[list[float | None]]]]:
    """Training-curve panels: the train runs, then one panel of finetune arms per ratio."""
    objective = params.search.objective
    panels = {
        "train, all labels": {
            method_name(arch, objective): [list(c.test_acc) for c in curves]
            for arch, curves in inputs.train_curves.items()
        }
    }
    for ratio in sorted(params.finetune.label_ratios):
        panels[f"finetune, {ratio_label(ratio)} of labels"] = {
            arm.label: [list(c.test_acc) for c in inputs.finetune_curves[arm.init][ratio]]
            for arm in finetune_arms(params)
        }
    return panels


def finetune_runs(params: Params, inputs: Inputs) -> dict[Arm, dict[float, list[Curve]]]:
    """Every finetuned arm's per-seed learning curves at every ratio."""
    return {arm: inputs.finetune_curves[arm.init] for arm in finetune_arms(params)}


def scale_lines(params: Params, inputs: Inputs, budget: pd.DataFrame) -> list[str]:
    """How big the run was: data, network, the epochs of every stage, seeds and budgets."""
    manifest, sp = inputs.manifest, params.search
    height, width = manifest["image_shape"][:2]
    params_m = statistics.fmean(r["params_m"] for runs in inputs.train.values() for r in runs)
    phases = ", ".join(f"{name} {ratio:g}" for name, ratio in vars(sp.phases).items())
    validation = (
        []
        if inputs.validation_images is None
        else [
            f"Validation split: {inputs.validation_images} training images with their labels, "
            "where recipes are chosen; test images give only the reported numbers"
        ]
    )
    return [
        f"Data: {params.data.dataset}, {len(manifest['classes'])} classes, "
        f"{manifest['num_train']} training and {manifest['num_test']} test images of "
        f"{height}x{width} pixels",
        *validation,
        f"Network: {sp.layers} cells, {sp.channels} initial channels, "
        f"{params_m:.3f} M parameters (trained networks, mean)",
        f"Search: {sp.epochs} epochs (phases: {phases}), batches of {sp.batch_size} images",
        f"Train from scratch: {params.train.epochs} epochs; finetune: "
        f"{params.finetune.epochs} epochs at every label ratio; two-stage pre-training: "
        f"{two_stage_budget(params)}; linear evaluation: {params.linear_eval.epochs} "
        f"epochs ({params.linear_eval.protocol} protocol)",
        f"Seeds: {len(params.seeds)}; each seed draws its own labelled subset, nested across "
        "label ratios (a smaller ratio's labelled images are part of every larger one's)",
        "Linear probes: every backbone (preserved, two-stage and random) has its BN statistics "
        "re-estimated on unlabelled training images before its features are taken",
        budget_line(budget, sp.objective),
    ]


def params_yaml(params: Params) -> str:
    """params.yaml as validated, sorted: loading it again gives the same params."""
    return yaml.safe_dump(tracked_params(params, "report"), sort_keys=True)


def build(params: Params, inputs: Inputs) -> dict[Path, str | bytes]:
    """Every output file's content, built in memory from the inputs."""
    objective = params.search.objective
    main = main_table(objective, inputs.train, inputs.searches)
    arm_order = arms(params.finetune.inits)
    accs = arm_accuracies(params, inputs)
    ratios = label_ratio_table(
        accs,
        arm_accuracies(params, inputs, "best_test_acc"),
        arm_order,
        arm_accuracies(params, inputs, "val_acc"),
    )
    num_classes = len(inputs.manifest["classes"])
    budget = budget_table(
        inputs.searches,
        inputs.pretrains,
        {
            init: {ratio: [m["steps"] for m in runs] for ratio, runs in by_ratio.items()}
            for init, by_ratio in inputs.finetune.items()
        },
        params.finetune.architecture,
    )
    ssl = self_supervision(params, inputs)
    runs = finetune_runs(params, inputs)
    unconverged = unconverged_runs(runs, params.seeds)
    rising = rising_cells(unconverged)
    learning = learning_table(runs)
    comparisons = comparisons_table(accs, arm_order)
    budget_md = "\n\n".join(
        [budget_markdown(budget, objective), budget_sentence(budget, objective)]
    )
    unlearned = unlearned_arms(ssl.checks)
    summary = Summary(
        dataset=params.data.dataset,
        scale=scale_lines(params, inputs, budget),
        num_classes=num_classes,
        objective=objective,
        architecture=params.finetune.architecture,
        genotypes={seed: g.short() for seed, g in inputs.genotypes.items()},
        searches=inputs.searches,
        pretrains=inputs.pretrains,
        main=main,
        ratios=ratios,
        verdicts=comparisons_md(comparisons, len(params.seeds)).rstrip("\n"),
        ssl=ssl.markdown,
        checks=ssl.checks,
        budget=budget_md,
        convergence=convergence_markdown(unconverged),
        learning=learning_markdown(learning),
        rising=rising,
        unlearned=unlearned,
    )
    extra = {
        "comparisons": comparisons_metrics(comparisons),
        "budget": budget_metrics(budget),
        "learning": learning_metrics(learning, unconverged),
        "ssl": ssl.metrics,
    }
    metrics = json.dumps(metrics_dict(main, ratios, extra), indent=2, sort_keys=True) + "\n"
    numbers = headline(main, ratios, comparisons, params.finetune.architecture, ssl.checks)
    return {
        MAIN_TABLE_CSV: to_csv(main),
        MAIN_TABLE_MD: main_markdown(main, num_classes) + "\n",
        LABEL_RATIO_CSV: to_csv(ratios),
        LABEL_RATIO_MD: label_ratio_md(ratios, num_classes, rising, unlearned),
        LABEL_RATIO_PNG: label_ratio_png(ratios),
        TRAINING_CURVES_PNG: training_curves_png(curve_panels(params, inputs)),
        ALPHA_HEATMAP_PNG: alpha_heatmap_png(inputs.alpha_history, params.seeds[0]),
        BUDGET_CSV: to_csv(budget),
        BUDGET_MD: budget_md + "\n",
        COMPARISONS_CSV: to_csv(comparisons),
        COMPARISONS_MD: comparisons_md(comparisons, len(params.seeds)),
        LEARNING_CURVES_CSV: to_csv(learning),
        LEARNING_CURVES_PNG: learning_curves_png(runs),
        SSL_CURVES_PNG: ssl.figure,
        SUMMARY_MD: summary_markdown(summary),
        METRICS_JSON: metrics,
        HEADLINE_JSON: json.dumps(numbers, indent=2) + "\n",
        PARAMS_YAML: params_yaml(params),
    }


@dataclass(frozen=True)
class SelfSupervision:
    """The label-free verdicts, and the table, figure and metrics that show them."""

    checks: dict[str, SslCheck]
    markdown: str
    figure: bytes
    metrics: dict[str, Any]


def self_supervision(params: Params, inputs: Inputs) -> SelfSupervision:
    """Whether the search's supernet, the preserved child and the two-stage backbone learned,
    read off the label-free measure every self-supervised run took."""
    name = objective_name(params.search.objective)
    architecture = params.finetune.architecture
    checks = ssl_checks(inputs.searches, inputs.pretrains, inputs.linear_eval, architecture)
    curves = [c for c in inputs.search_curves if c is not None]
    chance = inputs.searches[0].get("val_ssl_chance")
    path = path_check(curves, chance) if curves and chance is not None else None
    accuracies = {
        "search": statistics.fmean(c.acc[-1] for c in curves) if curves else 0.0,
        PRESERVED: _mean_of(
            [s.get(architecture, {}).get("child_val_ssl_acc") for s in inputs.searches]
        ),
        TWO_STAGE: _mean_of([p.get("val_ssl_acc") for p in inputs.pretrains]),
    }
    lines = {f"search: the supernet on its kept path ({name})": curves} if curves else {}
    pretrained = [c for c in inputs.pretrain_curves if c is not None]
    if pretrained:
        lines[f"two-stage: the child pre-trained ({name})"] = pretrained
    points = {}
    if PRESERVED in checks and curves:
        label = "preserved: the derived child, the search's head"
        points[label] = (curves[0].steps[-1], checks[PRESERVED].losses)
    figure = ssl_curves_png(lines, points, chance, name) if lines else b""
    return SelfSupervision(
        checks,
        ssl_markdown(checks, path, name, accuracies),
        figure,
        ssl_metrics(checks, path),
    )


def _mean_of(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else 0.0
