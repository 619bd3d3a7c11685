"""The README's instructor problem, end to end through every command: list, new, check, show, solve, leaderboard."""

import json
import re
import shutil
from pathlib import Path

from handattn import check, leaderboard, new, problems, show, solve

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_problem_file_works_with_every_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))  # registering is global: undo it after
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "PROBLEM = " in b]
    echo = tmp_path / "echo.py"
    echo.write_text(example, encoding="utf-8")
    pf = ["--problem-file", str(echo)]

    assert check.main(["--list", *pf]) == 0
    assert "echo  (pass: KL ≤ 0.01 nats)\n  after a vowel" in capsys.readouterr().out

    starter = tmp_path / "echo.toml"
    assert new.main(["echo", "-o", str(starter), *pf]) == 0
    assert check.main(["echo", str(starter), "--texts", "64", "--length", "12", *pf]) == 1
    capsys.readouterr()

    assert show.main(["echo", str(starter), "--text", "bae", *pf]) == 0
    assert "bae" in capsys.readouterr().out.replace(" ", "")

    fitted = tmp_path / "fitted.toml"
    code = solve.main(["echo", "--heads", "0", "--out", str(fitted), "--max-steps", "30", "--restarts", "1", *pf])
    assert code in (0, 1) and fitted.exists()
    assert check.main(["echo", str(fitted), "--json", "--texts", "64", "--length", "12", *pf]) in (0, 1)
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["problem"] == "echo"

    submissions = tmp_path / "submissions"
    (submissions / "ada").mkdir(parents=True)
    shutil.copy(fitted, submissions / "ada" / "echo.toml")
    out = tmp_path / "board"
    assert leaderboard.main([str(submissions), "--out", str(out), "--problems", "echo", "--no-reference", *pf]) == 0
    assert "ada,echo,1," in (out / "leaderboard.csv").read_text(encoding="utf-8")
