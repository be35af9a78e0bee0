# The SSWP-NAS pipeline for Snakemake: the same `sswp <stage>` commands and artifact
# layout as dvc.yaml; both take each stage's code, params and runs from src/sswp/pipeline/contract.py.
configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/children.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        REPORT_OUTPUTS,
    default_target: True
