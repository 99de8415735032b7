# Vocal separation (Spleeter or Demucs): one job per shard, the model loaded once, each
# recording streamed in chunks. `separation: none` is handled by rule copy_vocals
# (rules/ingest.smk) instead. Helpers live in workflow_scripts/separation.py (tested there;
# `--lint` wants no defs here).
from workflow_scripts import separation as separation_helpers

if not separation_rule_is_copy():

    rule separate_vocals:
        """Vocal stems (mono s16, same rate and length as audio.wav) of the shard's recordings with Spleeter or Demucs."""
        input:
            audio=shard_manifest("ingest"),
        output:
            manifest=shard_manifest("separate_vocals"),
        log:
            shard_log("separate_vocals"),
        benchmark:
            shard_benchmark("separate_vocals")
        conda:
            f"../envs/{separation_helpers.env_name(config['separation'])}.yaml"
        envmodules:
            env_module(separation_helpers.env_name(config["separation"])),
        threads: config["separation"]["threads"]
        resources:
            mem_mb=separation_mem_mb(),
            runtime=separation_runtime,
            gpu=separation_gpus(),
        params:
            method=config["separation"]["method"],
            cfg=separation_helpers.job_params(config["separation"]),
            keep_accompaniment=config["separation"]["keep_accompaniment"],
            recs=shard_recordings,
        script:
            "../workflow_scripts/separation.py"
