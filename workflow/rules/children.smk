rule train:
    input:
        data="data/prepared",
        search="artifacts/search",
        code=code_deps("train"),
    output:
        artifacts=directory("artifacts/train"),
        metrics="metrics/train.json",
    params:
        file=PARAMS_FILE,
        tracked=stage_params("train"),
    threads: config["runtime"]["threads"]
    retries: 2
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/train.log",
    shell:
        "sswp train --params {params.file} 2> {log}"


rule finetune:
    input:
        data="data/prepared",
        search="artifacts/search",
        code=code_deps("finetune"),
    output:
        artifacts=directory("artifacts/finetune/{init}-{ratio}"),
        metrics="metrics/finetune/{init}-{ratio}.json",
    params:
        file=PARAMS_FILE,
        tracked=stage_params("finetune"),
    threads: config["runtime"]["threads"]
    retries: 2
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/finetune-{init}-{ratio}.log",
    shell:
        "sswp finetune --params {params.file} --init {wildcards.init} --ratio {wildcards.ratio}"
        " 2> {log}"
