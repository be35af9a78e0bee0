rule report:
    input:
        search="metrics/search.json",
        train="metrics/train.json",
        finetune=expand("metrics/finetune/{init}-{ratio}.json", init=INITS, ratio=RATIOS),
        genotypes="artifacts/search",
        code=code_deps("report"),
    # REPORT_OUTPUTS; the tables and the plot also go into `snakemake --report`.
    output:
        report("results/summary.csv", caption="../report/summary.rst", category="Results"),
        report("results/summary.md", caption="../report/summary.rst", category="Results"),
        "results/label_ratio.csv",
        report("results/label_ratio.png", caption="../report/label_ratio.rst", category="Results"),
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
        "sswp report --params {params.file} 2> {log}"
