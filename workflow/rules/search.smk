rule prepare:
    input:
        code=code_deps("prepare"),
        params_digest=params_digest_input("prepare", "data/prepared"),
    output:
        directory("data/prepared"),
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
        data="data/prepared",
        code=code_deps("search"),
        params_digest=params_digest_input("search", "artifacts/search/seed-{seed}"),
    output:
        artifacts=directory("artifacts/search/seed-{seed}"),
        metrics="metrics/search/seed-{seed}.json",
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
