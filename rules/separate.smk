# Vocal separation (Spleeter or Demucs): one job per recording, streamed in chunks.
# `separation: none` is handled by rule copy_vocals (rules/ingest.smk) instead.
# Helpers live in workflow_scripts/separation.py (tested there; `--lint` wants no defs here).
from workflow_scripts import separation as separation_helpers

if not separation_rule_is_copy():

    rule separate_vocals:
        """Vocal stem (mono s16, same rate and length as audio.wav) with Spleeter or Demucs."""
        input:
            audio=processed_path("{rec}", "audio.wav"),
        output:
            vocals=processed_path("{rec}", "vocals.wav"),
            accompaniment=(
                processed_path("{rec}", "accompaniment.wav")
                if config["separation"]["keep_accompaniment"]
                else temp(processed_path("{rec}", "accompaniment.wav"))
            ),
        log:
            log_path("separate_vocals", "{rec}"),
        benchmark:
            benchmark_path("separate_vocals", "{rec}")
        conda:
            f"../envs/{separation_helpers.env_name(config['separation'])}.yaml"
        envmodules:
            env_module(separation_helpers.env_name(config["separation"])),
        threads: config["separation"]["threads"]
        resources:
            mem_mb=separation_helpers.mem_mb(config["separation"]),
            runtime=separation_helpers.runtime_function(
                config["separation"], config["sample_rate"]
            ),
            gpu=separation_helpers.gpu_count(config["separation"]),
        params:
            method=config["separation"]["method"],
            cfg=separation_helpers.job_params(config["separation"]),
        script:
            "../workflow_scripts/separation.py"
