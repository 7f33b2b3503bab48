"""README and code agree: the commands it shows exist and CI runs its test command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from jointnas.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _quick_start() -> list[str]:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_ci_runs_the_readme_install_and_test_commands():
    install, main_job, tests = _quick_start()
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()
    assert main_job == "jointnas run"
    for part in install.split("&&"):
        assert part.strip().replace("pip install", "python -m pip install --quiet") in ci


def test_every_cli_flag_in_the_readme_exists():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    shell = "\n".join(b.split("```", 1)[0] for b in README.split("```bash")[1:])
    commands = re.findall(r"^jointnas (\w+)([^\n#]*)", shell, flags=re.M)
    assert len(commands) >= 4
    for command, rest in commands:
        assert command in sub, command
        target = sub[command]
        nested = [a for a in target._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:  # e.g. `jointnas predictor fit ...`
            word = rest.split()[0]
            assert word in nested[0].choices, (command, word)
            target = nested[0].choices[word]
        known = {o for a in target._actions for o in a.option_strings}
        for flag in re.findall(r"--[\w-]+", rest):
            assert flag in known, (command, flag)
