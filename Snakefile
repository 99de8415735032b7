# piper-voice-workflow: raw speech recordings → clips → transcripts → a trained Piper voice.
# Run: snakemake --cores N   (see README.md; profiles/default is loaded automatically)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    shard=ID_PATTERN,


include: "rules/ingest.smk"
include: "rules/separate.smk"
include: "rules/segment.smk"
include: "rules/score.smk"
include: "rules/transcribe.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),


onstart:
    check_stage_envs()


onsuccess:
    log_excluded_recordings()


onerror:
    log_excluded_recordings()
