rule prepare:
    input:
        code=code_deps("prepare"),
    output:
        directory("data/prepared"),
    params:
        file=PARAMS_FILE,
        tracked=stage_params("prepare"),
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/prepare.log",
    shell:
        "sswp prepare --params {params.file} 2> {log}"


rule search:
    input:
        data="data/prepared",
        code=code_deps("search"),
    output:
        artifacts=directory("artifacts/search"),
        metrics="metrics/search.json",
    params:
        file=PARAMS_FILE,
        tracked=stage_params("search"),
    threads: config["runtime"]["threads"]
    retries: 2
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/search.log",
    shell:
        "sswp search --params {params.file} 2> {log}"
