rule report:
    input:
        # Every run's artifact folder (the plan's report inputs) and every metrics file.
        runs=[str(folder) for folder in RUNS[-1].inputs],
        metrics=[str(path) for run in RUNS for path in run.files],
        code=code_deps("report"),
        params_digest=params_digest_input("report", "results"),
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
        report("results/budget.csv", caption="../report/budget.rst", category="Tables"),
        "results/budget.md",
        report("results/comparisons.csv", caption="../report/comparisons.rst", category="Tables"),
        "results/comparisons.md",
        "results/learning_curves.csv",
        report(
            "results/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Plots",
        ),
        report("results/ssl_curves.png", caption="../report/ssl_curves.rst", category="Plots"),
        "results/metrics.json",
        "results/machine.json",
        "results/headline.json",
    params:
        file=PARAMS_FILE,
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
        f"{SSWP} report --params {{params.file}} 2> {{log}}"
