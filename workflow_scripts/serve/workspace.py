"""Where serve mode reads and writes: the working directory, the config files, and the paths
the config names (read afresh on each request, so an edited config is seen at once)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts.snakemake_cmd import load_config, resolve, snakemake_argv


@dataclass
class Workspace:
    workdir: Path
    configfiles: list[Path] = field(default_factory=list)
    cores: int | str | None = None
    extra_args: list[str] = field(default_factory=list)

    def config(self) -> dict:
        return load_config(self.workdir, self.configfiles)

    def output_dir(self, config: dict | None = None) -> Path:
        return resolve(self.workdir, (config or self.config())["output_dir"])

    def inputs_dir(self, config: dict | None = None) -> Path:
        return resolve(self.workdir, (config or self.config())["inputs"]["directory"])

    def run_argv(self, until: str) -> list[str]:
        return snakemake_argv(self.workdir, self.configfiles, {"run_until": until}, cores=self.cores,
                              extra=self.extra_args)

    def unlock_argv(self) -> list[str]:
        return snakemake_argv(self.workdir, self.configfiles, extra=["--unlock"])

    def training(self) -> dict:
        """Chunks planned (training.epochs / checkpoint_every) and present, the voice files."""
        from workflow_scripts.piper_train import TrainingPlan

        cfg = self.config()
        out = self.output_dir(cfg)
        plan = TrainingPlan(cfg["training"], lambda name: str(out / name))
        chunks = []
        for n in range(plan.n_chunks()):
            p = Path(plan.weights_path(n))  # kept for every chunk (full states are pruned)
            chunks.append({"n": n, "present": p.is_file(), "bytes": p.stat().st_size if p.is_file() else 0})
        voice = {}
        for name in ("voice.onnx", "voice.onnx.json", "smoke_test.json"):
            p = out / "voice" / name
            voice[name] = p.stat().st_size if p.is_file() else None
        logs = sorted((out / "logs" / "train_chunk").glob("chunk_*.log"),
                      key=lambda p: int(p.stem.split("_")[1]) if p.stem.split("_")[1].isdigit() else -1)
        return {"planned": plan.n_chunks(), "present": sum(c["present"] for c in chunks), "chunks": chunks,
                "epochs": cfg["training"]["epochs"], "checkpoint_every": cfg["training"]["checkpoint_every"],
                "preset": cfg["training"]["preset"], "voice": voice, "log": str(logs[-1]) if logs else None}
