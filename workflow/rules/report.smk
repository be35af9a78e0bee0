rule report:
    input:
        prepared="data/prepared",
        search=expand("metrics/search/seed-{seed}.json", seed=SEEDS),
        alphas=expand("artifacts/search/seed-{seed}", seed=SEEDS),
        pretrain=expand("metrics/pretrain/seed-{seed}.json", seed=SEEDS),
        train=expand(
            "artifacts/train/{architecture}-seed-{seed}", architecture=ARCHITECTURES, seed=SEEDS
        ),
        finetune=expand(
            "artifacts/finetune/{init}-{ratio}-seed-{seed}",
            init=[*INITS, "two_stage"],
            ratio=RATIOS,
            seed=SEEDS,
        ),
        linear_eval=expand("artifacts/linear_eval/{ratio}-seed-{seed}", ratio=RATIOS, seed=SEEDS),
        code=code_deps("report"),
        # results/params.yaml records every param, so any change rewrites it.
        params=PARAMS_FILE,
    # REPORT_OUTPUTS; the tables and plots also go into `snakemake --report`.
    output:
        report("results/main_table.csv", caption="../report/main_table.rst", category="Tables"),
        "results/main_table.md",
        report("results/label_ratio.csv", caption="../report/label_ratio.rst", category="Tables"),
        "results/label_ratio.md",
        report("results/summary.md", caption="../report/summary.rst", category="Tables"),
        "results/params.yaml",
        report("results/label_ratio.png", caption="../report/label_ratio.rst", category="Plots"),
        report(
            "results/training_curves.png",
            caption="../report/training_curves.rst",
            category="Plots",
        ),
        report(
            "results/alpha_heatmap.png", caption="../report/alpha_heatmap.rst", category="Plots"
        ),
        "results/budget.csv",
        "results/budget.md",
        "results/comparisons.csv",
        "results/comparisons.md",
        "results/learning_curves.csv",
        "results/learning_curves.png",
        "results/metrics.json",
        "results/headline.json",
    params:
        tracked=stage_params("report"),
    threads: RESOURCES["report"]["cpus_per_task"]
    resources:
        **RESOURCES["report"],
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/report.log",
    benchmark:
        "logs/benchmarks/report.tsv"
    shell:
        f"{SSWP} report --params {{input.params}} 2> {{log}}"
