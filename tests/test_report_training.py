"""The training figure reads each chunk's logged losses and timing."""
import json

from workflow_scripts.report_training import plot_training, training_history


def test_history_and_figure(tmp_path):
    ck = tmp_path / "checkpoints"
    for n, (loss, spe) in enumerate([(80.0, 70.0), (60.0, 60.0)]):
        work = ck / "work" / f"chunk_{n}"
        (work / "csv" / "attempt_1").mkdir(parents=True)
        (work / "chunk.json").write_text(json.dumps({"chunk": n, "seconds_per_epoch": spe}))
        (work / "csv" / "attempt_1" / "metrics.csv").write_text(f"epoch,step,val_loss,val_mel\n{n},9,{loss},1.5\n")
        (ck / f"chunk_{n}.weights.ckpt").write_bytes(b"x")
    ckpts = [str(ck / "chunk_0.weights.ckpt"), str(ck / "chunk_1.weights.ckpt")]
    curves, timing = training_history(ckpts)
    assert curves["val_loss"] == [(0, 80.0), (1, 60.0)]
    assert timing == [(0, 70.0), (1, 60.0)]
    plot_training(ckpts, str(tmp_path / "training.png"))
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
