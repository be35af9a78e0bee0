rule report:
    input:
        search="metrics/search.json",
        train="metrics/train.json",
        finetune=expand("metrics/finetune/{init}-{ratio}.json", init=INITS, ratio=RATIOS),
        genotypes="artifacts/search",
        code=code_deps("report"),
    output:
        REPORT_OUTPUTS,
    params:
        file=PARAMS_FILE,
        tracked=stage_params("report"),
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/report.log",
    shell:
        "sswp report --params {params.file} 2> {log}"
