rule prepare:
    input:
        code=code_deps("prepare"),
        params_digest=params_digest_input("prepare", STAGES["prepare"].artifact),
    output:
        directory(STAGES["prepare"].artifact),
    params:
        file=PARAMS_FILE,
        tracked=stage_params("prepare"),
    threads: RESOURCES["prepare"]["cpus_per_task"]
    resources:
        **RESOURCES["prepare"],
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/prepare.log",
    benchmark:
        "logs/benchmarks/prepare.tsv"
    shell:
        f"{SSWP} prepare --params {{params.file}} 2> {{log}}"


rule search:
    input:
        runs=run_inputs("search"),
        code=code_deps("search"),
        params_digest=params_digest_input("search", STAGES["search"].artifact),
    output:
        artifacts=directory(STAGES["search"].artifact),
        metrics=STAGES["search"].metrics,
    params:
        file=PARAMS_FILE,
        tracked=stage_params("search"),
    threads: RESOURCES["search"]["cpus_per_task"]
    resources:
        **RESOURCES["search"],
    retries: STAGE_RETRIES
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/search-seed-{seed}.log",
    benchmark:
        "logs/benchmarks/search-seed-{seed}.tsv"
    shell:
        f"{SSWP_GPU} search --params {{params.file}} --seed {{wildcards.seed}} 2> {{log}}"
