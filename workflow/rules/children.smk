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
    threads: RESOURCES["train"]["cpus_per_task"]
    resources:
        **RESOURCES["train"],
    retries: 2  # each retry resumes from the stage's checkpoint
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/train.log",
    benchmark:
        "logs/benchmarks/train.tsv"
    shell:
        f"{SSWP_GPU} train --params {{params.file}} 2> {{log}}"


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
    threads: RESOURCES["finetune"]["cpus_per_task"]
    resources:
        **RESOURCES["finetune"],
    retries: 2  # each retry resumes from the stage's checkpoint
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/finetune-{init}-{ratio}.log",
    benchmark:
        "logs/benchmarks/finetune-{init}-{ratio}.tsv"
    shell:
        f"{SSWP_GPU} finetune --params {{params.file}}"
        f" --init {{wildcards.init}} --ratio {{wildcards.ratio}} 2> {{log}}"
