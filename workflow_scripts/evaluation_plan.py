"""The per-chunk evaluation's paths and parameters for rules/evaluate.smk (kept here, like
piper_train.TrainingPlan: Snakemake's linter wants no ``def`` next to rules, and a module is
unit-testable). ``evaluation`` and ``training`` are the validated config sections."""


class EvaluationPlan:
    def __init__(self, evaluation: dict, training: dict, n_chunks, dataset_path):
        self.evaluation, self.training = evaluation, training
        self._n_chunks, self._dataset_path = n_chunks, dataset_path

    def path(self, name: str) -> str:
        return self._dataset_path(f"eval/{name}")

    def enabled(self) -> bool:
        return bool(self.evaluation["enabled"])

    def reports(self) -> list[str]:
        """Every chunk's evaluation report (none when evaluation is off)."""
        if not self.enabled():
            return []
        return [self.path(f"chunk_{n}.json") for n in range(self._n_chunks())]

    def chunk_numbers(self) -> list[int]:
        return list(range(self._n_chunks()))

    def chunk_epochs(self) -> list[int]:
        """Epochs trained by the end of each chunk (this run's count; a resumed base adds its own)."""
        every = int(self.training["checkpoint_every"])
        return [(n + 1) * every for n in range(self._n_chunks())]

    def settings(self) -> dict:
        """What voice_eval reads (its SETTINGS_KEYS): the section but ``enabled``."""
        return {k: v for k, v in self.evaluation.items() if k != "enabled"}

    def verdict_settings(self) -> dict:
        return {k: self.evaluation[k] for k in ("intelligible_max_cer", "partly_intelligible_max_cer")}

    def gpus(self) -> int:
        return 1 if self.evaluation["device"] == "cuda" else 0
