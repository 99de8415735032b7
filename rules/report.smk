# "See the dataset": figures and a run summary table for `snakemake --report report.html`
# (captions in report/*.rst), and a static review page whose export, put at
# `{root}/overrides.tsv`, overrides the quality gate. Helpers: rules/common.smk.


rule report_plots:
    """Figures of the clips and transcripts (one job per run)."""
    input:
        review=dataset_path("transcripts.tsv"),
        summary=dataset_path("summary.json"),
        transcription=dataset_path("transcription_summary.json"),
        clips=all_clip_dirs(),
    output:
        clip_durations=report(
            report_path("clip_durations.png"),
            caption="../report/clip_durations.rst",
            category="Clips",
        ),
        loudness=report(
            report_path("loudness.png"),
            caption="../report/loudness.rst",
            category="Clips",
        ),
        hours=report(
            report_path("hours_per_recording.png"),
            caption="../report/hours_per_recording.rst",
            category="Run",
        ),
        rejects=report(
            report_path("rejects_by_reason.png"),
            caption="../report/rejects_by_reason.rst",
            category="Transcripts",
        ),
        quality=report(
            report_path("quality.png"),
            caption="../report/quality.rst",
            category="Transcripts",
        ),
        speaking_rate=report(
            report_path("speaking_rate.png"),
            caption="../report/speaking_rate.rst",
            category="Transcripts",
        ),
        audio_quality=report(
            report_path("audio_quality.png"),
            caption="../report/audio_quality.rst",
            category="Audio gates",
        ),
        speakers=report(
            report_path("speakers.png"),
            caption="../report/speakers.rst",
            category="Audio gates",
        ),
    log:
        log_path("report_plots", "all"),
    benchmark:
        benchmark_path("report_plots", "all")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        limits=report_limits(),
        recs=recording_ids(),
    script:
        "../workflow_scripts/report_plots.py"


rule report_summary:
    """Run summary table: recordings, hours, clips, rejects by reason, time per stage."""
    input:
        summary=dataset_path("summary.json"),
        transcription=dataset_path("transcription_summary.json"),
        benchmarks=all_stage_benchmarks(),
    output:
        html=report(
            report_path("run_summary.html"),
            caption="../report/run_summary.rst",
            category="Run",
        ),
        tsv=report_path("run_summary.tsv"),
    log:
        log_path("report_summary", "all"),
    benchmark:
        benchmark_path("report_summary", "all")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        stages=stage_benchmarks(),
    script:
        "../workflow_scripts/report_plots.py"


rule review_page:
    """Static review page: play, accept, reject, correct clips; exports overrides.tsv."""
    input:
        review=dataset_path("transcripts.tsv"),
        metadata=dataset_path("metadata.csv"),
        rejected=dataset_path("rejected.tsv"),
    output:
        html=review_page_path(),
    log:
        log_path("review_page", "all"),
    benchmark:
        benchmark_path("review_page", "all")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        overrides_target=overrides_path(),
    script:
        "../workflow_scripts/review_page.py"


rule report_training:
    """Loss curves, the voice's evaluation per epoch and time per epoch of the chunks."""
    input:
        # every chunk's weights file: the one per-chunk output kept (full states are pruned)
        weights=all_chunk_weights(),
        reports=all_chunk_reports(),
    output:
        png=report(
            report_path("training.png"),
            caption="../report/training.rst",
            category="Training",
        ),
    log:
        log_path("report_training", "all"),
    benchmark:
        benchmark_path("report_training", "all")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        epochs=chunk_epochs(),
    script:
        "../workflow_scripts/report_training.py"
