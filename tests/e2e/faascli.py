"""The real `faas-cli` (from $OPENFAAS_BIN_DIR, by default ../shared/bin, or PATH), driven as a
person drives it: a HOME of the test's own (faas-cli keeps its login in ~/.openfaas/config.yml),
every command in a folder without a stack.yml (faas-cli reads ./stack.yml when it exists, even
for `deploy --name`), nothing of our environment (no OPENFAAS_URL, no proxies)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import BINARIES_DOC, DEFAULT_BIN_DIR, OPENFAAS_BIN_DIR, bin_dir


def faas_cli_path() -> str:
    beside = bin_dir() / "faas-cli"
    if os.access(beside, os.X_OK):
        return str(beside)
    on_path = shutil.which("faas-cli")
    if on_path:
        return on_path
    pytest.fail(
        f"faas-cli is neither at {beside} nor on PATH: these tests drive the real OpenFaaS CLI, read from "
        f"${OPENFAAS_BIN_DIR} (default {DEFAULT_BIN_DIR} beside the repository, as on CI); {BINARIES_DOC}",
        pytrace=False,
    )


@dataclass(frozen=True)
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Everything the person at the terminal sees."""
        return self.out + self.err

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


@dataclass(frozen=True)
class FaasCli:
    binary: str
    gateway: str
    home: Path

    def command(self, *args: str) -> dict:
        """Arguments for subprocess: faas-cli with --gateway, a HOME of its own and nothing else from
        our environment (no OPENFAAS_URL, no proxies), in a folder without a stack.yml."""
        env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return {"args": [self.binary, *args, "--gateway", self.gateway], "cwd": self.home, "env": env, "text": True}

    def run(self, *args: str, stdin: str = "", timeout: float = 180) -> Result:
        command = self.command(*args)
        done = subprocess.run(**command, input=stdin, capture_output=True, timeout=timeout)
        return Result(command["args"], done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, stdin: str = "") -> Result:
        result = self.run(*args, stdin=stdin)
        assert result.rc == 0, str(result)
        return result

    def login(self, user: str, password: str) -> Result:
        return self.run("login", "--username", user, "--password-stdin", stdin=password)

    def ready(self, fn: str) -> None:
        result = self.ok("ready", fn, "--attempts", "120", "--interval", "1s")
        assert f"Function {fn} is ready" in result.out, str(result)

    def describe(self, fn: str) -> dict[str, str]:
        """`describe` as a dict of its top-level `Key: value` lines (and the raw text under '')."""
        result = self.ok("describe", fn)
        fields = {"": result.out}
        for line in result.out.splitlines():
            key, sep, value = line.partition(":")
            if sep and not line.startswith(" "):
                fields[key] = value.strip()
        return fields

    def listed(self, *flags: str) -> tuple[list[str], dict[str, list[str]]]:
        """`list` as its header words and, per function, the words of its row."""
        lines = self.ok("list", *flags).out.splitlines()
        return lines[0].split(), {words[0]: words for words in (line.split() for line in lines[1:]) if words}
