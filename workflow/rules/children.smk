rule train:
    input:
        data="data/prepared",
        search=train_search_input,
        code=code_deps("train"),
        params_digest=params_digest_input(
            train_stage, "artifacts/train/{architecture}-seed-{seed}"
        ),
    output:
        artifacts=directory("artifacts/train/{architecture}-seed-{seed}"),
        metrics="metrics/train/{architecture}-seed-{seed}.json",
    params:
        file=PARAMS_FILE,
        tracked=stage_params("train"),
    threads: RESOURCES["train"]["cpus_per_task"]
    resources:
        **RESOURCES["train"],
    retries: STAGE_RETRIES
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/train-{architecture}-seed-{seed}.log",
    benchmark:
        "logs/benchmarks/train-{architecture}-seed-{seed}.tsv"
    shell:
        f"{SSWP_GPU} train --params {{params.file}} --seed {{wildcards.seed}}"
        f" --architecture {{wildcards.architecture}} 2> {{log}}"


rule pretrain:
    input:
        data="data/prepared",
        search="artifacts/search/seed-{seed}",
        code=code_deps("pretrain"),
        params_digest=params_digest_input("pretrain", "artifacts/pretrain/seed-{seed}"),
    output:
        artifacts=directory("artifacts/pretrain/seed-{seed}"),
        metrics="metrics/pretrain/seed-{seed}.json",
    params:
        file=PARAMS_FILE,
        tracked=stage_params("pretrain"),
    threads: RESOURCES["pretrain"]["cpus_per_task"]
    resources:
        **RESOURCES["pretrain"],
    retries: STAGE_RETRIES
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/pretrain-seed-{seed}.log",
    benchmark:
        "logs/benchmarks/pretrain-seed-{seed}.tsv"
    shell:
        f"{SSWP_GPU} pretrain --params {{params.file}} --seed {{wildcards.seed}} 2> {{log}}"


rule finetune:
    input:
        data="data/prepared",
        weights=finetune_weights,
        code=code_deps("finetune"),
        params_digest=params_digest_input(
            finetune_stage, "artifacts/finetune/{init}-{ratio}-seed-{seed}"
        ),
    output:
        artifacts=directory("artifacts/finetune/{init}-{ratio}-seed-{seed}"),
        metrics="metrics/finetune/{init}-{ratio}-seed-{seed}.json",
    params:
        file=PARAMS_FILE,
        tracked=stage_params("finetune"),
    threads: RESOURCES["finetune"]["cpus_per_task"]
    resources:
        **RESOURCES["finetune"],
    retries: STAGE_RETRIES
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/finetune-{init}-{ratio}-seed-{seed}.log",
    benchmark:
        "logs/benchmarks/finetune-{init}-{ratio}-seed-{seed}.tsv"
    shell:
        f"{SSWP_GPU} finetune --params {{params.file}} --seed {{wildcards.seed}}"
        f" --init {{wildcards.init}} --ratio {{wildcards.ratio}} 2> {{log}}"


rule linear_eval:
    input:
        data="data/prepared",
        search="artifacts/search/seed-{seed}",
        pretrain="artifacts/pretrain/seed-{seed}",
        code=code_deps("linear_eval"),
        params_digest=params_digest_input(
            "linear_eval", "artifacts/linear_eval/{ratio}-seed-{seed}"
        ),
    output:
        artifacts=directory("artifacts/linear_eval/{ratio}-seed-{seed}"),
        metrics=expand(
            "metrics/linear_eval/{arm}-{{ratio}}-seed-{{seed}}.json", arm=LINEAR_EVAL_ARMS
        ),
    params:
        file=PARAMS_FILE,
        tracked=stage_params("linear_eval"),
    threads: RESOURCES["linear_eval"]["cpus_per_task"]
    resources:
        **RESOURCES["linear_eval"],
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/linear_eval-{ratio}-seed-{seed}.log",
    benchmark:
        "logs/benchmarks/linear_eval-{ratio}-seed-{seed}.tsv"
    shell:
        f"{SSWP} linear-eval --params {{params.file}} --seed {{wildcards.seed}}"
        f" --ratio {{wildcards.ratio}} 2> {{log}}"
