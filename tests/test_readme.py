"""README's two commands stay the ones CI runs."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def readme_commands():
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [ln for ln in block.splitlines() if ln and not ln.startswith("#")]


def test_two_commands_at_top():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert "config/example.yaml" in cmds[0] and "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    assert readme_commands()[1] in (REPO / ".ci" / "run").read_text()
