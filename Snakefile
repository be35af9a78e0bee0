# The SSWP-NAS pipeline for Snakemake: the same `sswp <stage>` commands and artifact
# layout as dvc.yaml; both take each stage's code, params and runs from the stage contract,
# src/sswp/pipeline/contract.py.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/children.smk"
include: "workflow/rules/report.smk"


# Snakemake keeps only the last onstart handler: this is the one, and it calls every check.
onstart:
    stop_if_gpu_jobs_lack_gres()
    write_resolved_params()


# Cheap rules run on the machine that runs Snakemake, never as cluster jobs.
localrules:
    all,
    prepare,
    report,
    params_digest,


rule all:
    input:
        REPORT_OUTPUTS,
    default_target: True


# The params digest file of a job whose output is up to date but which runs for another
# reason (params_digest_input writes it in every other case).
rule params_digest:
    output:
        ".sswp/params/{folder}.sha256",
    params:
        digest=lambda wildcards, output: DIGESTS[output[0]],
    container:
        SSWP_IMAGE
    log:
        "logs/snakemake/params_digest/{folder}.log",
    shell:
        "echo -n {params.digest} > {output} 2> {log}"
