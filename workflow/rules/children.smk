rule train:
    input:
        # A reference genotype (train.references) reads no search: its stage is train_reference.
        runs=run_inputs("train"),
        code=code_deps("train"),
        params_digest=params_digest_input(run_stage("train"), STAGES["train"].artifact),
    output:
        artifacts=directory(STAGES["train"].artifact),
        metrics=STAGES["train"].metrics,
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
        runs=run_inputs("pretrain"),
        code=code_deps("pretrain"),
        params_digest=params_digest_input("pretrain", STAGES["pretrain"].artifact),
    output:
        artifacts=directory(STAGES["pretrain"].artifact),
        metrics=STAGES["pretrain"].metrics,
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
        # The search's snapshot, plus the pre-trained backbone for the two-stage arm.
        runs=run_inputs("finetune"),
        code=code_deps("finetune"),
        params_digest=params_digest_input(run_stage("finetune"), STAGES["finetune"].artifact),
    output:
        artifacts=directory(STAGES["finetune"].artifact),
        metrics=STAGES["finetune"].metrics,
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
        runs=run_inputs("linear_eval"),
        code=code_deps("linear_eval"),
        params_digest=params_digest_input("linear_eval", STAGES["linear_eval"].artifact),
    output:
        artifacts=directory(STAGES["linear_eval"].artifact),
        metrics=STAGES["linear_eval"].metrics,
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
        f"{SSWP} linear_eval --params {{params.file}} --seed {{wildcards.seed}}"
        f" --ratio {{wildcards.ratio}} 2> {{log}}"
