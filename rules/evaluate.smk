# Evaluation of the voice while it trains: every chunk's generator weights are exported and
# judged (intelligibility by Whisper, similarity to the training clips' voice, DNSMOS,
# duration, silence, clipping), and `training.export: best` picks the chunk that becomes the
# voice. Chunk paths from rules/train.smk; the rest from EvaluationPlan
# (workflow_scripts/evaluation_plan.py).
from workflow_scripts.evaluation_plan import EvaluationPlan

EVALUATION = EvaluationPlan(
    config["evaluation"], config["training"], n_chunks, dataset_path
)
# eval_path(name): under {output_dir}/eval/; all_chunk_reports(): every chunk's report (none
# when evaluation.enabled is false); chunk_epochs(): epochs at the end of each chunk.
eval_path = EVALUATION.path
evaluation_enabled = EVALUATION.enabled
all_chunk_reports = EVALUATION.reports
chunk_numbers = EVALUATION.chunk_numbers
chunk_epochs = EVALUATION.chunk_epochs


rule export_chunk:
    """One chunk's generator weights -> an ONNX voice to evaluate (temporary: the weights stay)."""
    input:
        weights=chunk_weights("{n}"),
    output:
        onnx=temp(eval_path("voices/chunk_{n}.onnx")),
        json=temp(eval_path("voices/chunk_{n}.onnx.json")),
    log:
        log_path("export_chunk", "chunk_{n}"),
    benchmark:
        benchmark_path("export_chunk", "chunk_{n}")
    conda:
        "../envs/piper.yaml"
    envmodules:
        env_module("piper"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        espeak_voice=config["training"]["espeak_voice"],
        quality=config["training"]["preset"],
        # the voice's name is not evaluated: a constant keeps voice_name out of this job
        dataset_name="evaluation",
    script:
        "../workflow_scripts/piper_export.py"


rule evaluate_chunk:
    """Synthesise the evaluation sentences with chunk n and measure them (eval/chunk_{n}.json)."""
    input:
        onnx=eval_path("voices/chunk_{n}.onnx"),
        json=eval_path("voices/chunk_{n}.onnx.json"),
        reference=dataset_path("piper/wavs"),
    output:
        report=eval_path("chunk_{n}.json"),
        wavs=directory(eval_path("chunk_{n}")),
    log:
        log_path("evaluate_chunk", "chunk_{n}"),
    benchmark:
        benchmark_path("evaluate_chunk", "chunk_{n}")
    conda:
        "../envs/scoring.yaml"
    envmodules:
        env_module("scoring"),
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=2500,
        runtime=30,
        gpu=EVALUATION.gpus(),
    params:
        settings=EVALUATION.settings(),
    script:
        "../workflow_scripts/voice_eval.py"


rule select_voice:
    """`training.export`: the chunk that becomes the voice, with every candidate's metrics."""
    input:
        reports=all_chunk_reports(),
    output:
        selection=dataset_path("voice/selection.json"),
    log:
        log_path("select_voice", "voice"),
    benchmark:
        benchmark_path("select_voice", "voice")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        export=config["training"]["export"],
        chunks=chunk_numbers(),
        epochs=chunk_epochs(),
        settings=EVALUATION.verdict_settings(),
    script:
        "../workflow_scripts/select_voice.py"


rule evaluation_page:
    """eval/index.html: every chunk's evaluation audio side by side, with its metrics."""
    input:
        reports=all_chunk_reports(),
        selection=dataset_path("voice/selection.json"),
    output:
        html=report(
            eval_path("index.html"),
            caption="../report/evaluation.rst",
            category="Training",
        ),
    log:
        log_path("evaluation_page", "voice"),
    benchmark:
        benchmark_path("evaluation_page", "voice")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow_scripts/evaluation_page.py"
