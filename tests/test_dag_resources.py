"""The DAG's resource arithmetic (workflow_scripts/dag_resources.py) on known inputs."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow_scripts import dag_resources as res  # noqa: E402

HOUR = 3600.0


def test_memory_follows_the_longest_member_and_time_the_total():
    assert res.stem_mb(HOUR, 22050) == 3600 * 2 * 22050 / 1e6  # 158.76 MB of s16 mono
    assert res.audio_job_mem_mb(HOUR, 22050) == int(600 + 4 * 158.76)
    assert res.audio_job_mem_mb(3 * HOUR, 22050) > res.audio_job_mem_mb(HOUR, 22050)
    assert res.audio_job_mem_mb(HOUR, 16000) < res.audio_job_mem_mb(HOUR, 22050)
    assert res.audio_job_runtime(0) == 10 and res.audio_job_runtime(3 * HOUR) == 19
    assert res.ingest_runtime(0) == 10 and res.ingest_runtime(HOUR) == 16


def test_model_stages():
    assert res.transcription_mem_mb("fasterwhisper", 2) == 4200
    assert res.transcription_mem_mb("whisperx", 1) == 6600
    assert res.transcription_runtime(HOUR) == 75  # 15 + 1 min per audio minute
    assert res.scoring_mem_mb(2) == 2200 and res.scoring_mem_mb(1) < res.scoring_mem_mb(4)
    assert res.scoring_runtime(HOUR) == 35
    assert res.gpus("cuda") == 1 and res.gpus("auto") == 0 and res.gpus("cpu") == 0


def test_separation():
    assert res.separation_mem_mb("spleeter", 120, 256) == 1500 + 20 * 120
    assert res.separation_mem_mb("demucs", 120, 256) == 1500 + 10 * 120
    assert res.separation_runtime(0, "spleeter", "cpu", 2) == 15
    assert res.separation_runtime(HOUR, "demucs", "cpu", 4) == int(15 + 3600 * 3.0 * 4 / 4 / 60)
