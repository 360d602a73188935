"""One ablation row as a DVC experiment, and its outputs read back from the experiment's commit.

Rows run with `dvc exp run --temp`: each in a scratch copy under .dvc/tmp/exps made from HEAD plus the
workspace's uncommitted changes to tracked files, so the user's params.yaml, dvc.lock and outputs stay as
they were (a workspace run would leave the last row's params and outputs behind). What a row made is kept
in the DVC cache under the experiment's git ref (`dvc exp show`, `dvc exp apply <row>`), and read from there.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfake_detector.contracts.errors import DeepfakeDetectorError

logger = logging.getLogger(__name__)

GIT_TIMEOUT_S = 60
ERROR_LINES = 12  # of the experiment's log, quoted when it fails
HYDRA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
STAGE_ERROR = re.compile(r"\[[^]]*\] ERROR \S+: (.*)")    # logging_config.FORMAT
DVC_ERROR = re.compile(r"(ERROR: .*)")


class ExperimentError(DeepfakeDetectorError):
    """A DVC experiment could not be run or read back."""


def hydra_value(value: Any) -> str:
    """value in the override grammar `dvc exp run -S key=value` parses (Hydra's), so that it reaches
    params.yaml with its type: 0.5 a number, '0.5' a string, ['demo:a', 'demo:b'] a list of strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # Hydra keeps backslashes literally except before a quote or at the end of the string.
        escaped = re.sub(r"(\\*)'", lambda match: match.group(1) * 2 + "\\'", value)
        return "'" + re.sub(r"(\\+)\Z", lambda match: match.group(1) * 2, escaped) + "'"
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        odd = [key for key in value if not HYDRA_KEY.match(str(key))]
        if odd:
            raise ExperimentError(f"cannot pass the mapping keys {odd} to `dvc exp run -S`: use letters, digits "
                                  "and '_'")
        return "{" + ",".join(f"{key}:{hydra_value(item)}" for key, item in value.items()) + "}"
    raise ExperimentError(f"cannot pass {type(value).__name__} {value!r} to `dvc exp run -S`")


def set_param_arguments(overrides: Mapping[str, Any]) -> list[str]:
    return [argument for key, value in overrides.items() for argument in ("-S", f"{key}={hydra_value(value)}")]


def _command_env() -> dict[str, str]:
    """This environment with this interpreter's folder first on PATH: stage commands call `python`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class DvcExperiments:
    """The experiments of the repository at root, each named after its row and based on HEAD."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _git(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["git", *arguments], cwd=self.root, capture_output=True, text=True,
                                  timeout=GIT_TIMEOUT_S, check=check)
        except (OSError, subprocess.SubprocessError) as error:
            raise ExperimentError(f"{self.root}: `git {' '.join(arguments)}` failed: {error}; DVC experiments "
                                  "need a git repository with at least one commit") from None

    def baseline_rev(self) -> str:
        """HEAD's commit: the one every experiment of this run derives from."""
        return self._git("rev-parse", "HEAD").stdout.strip()

    def ref(self, name: str) -> str:
        """The git ref DVC stores experiment name (based on HEAD) under."""
        baseline = self.baseline_rev()
        return f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"

    def run(self, name: str, overrides: Mapping[str, Any], targets: Sequence[str], log_file: Path) -> str:
        """Run the experiment, replacing one of the same name on HEAD; its commit. DVC's output goes to
        log_file (started afresh); a failure raises ExperimentError quoting its error lines."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text("", encoding="utf-8")
        ref = self.ref(name)
        if self._git("rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0:
            logger.info("Replacing the earlier experiment %s", name)
            self._dvc(["exp", "remove", ref], log_file)
        self._dvc(["exp", "run", "--temp", "--name", name, *set_param_arguments(overrides), *targets], log_file)
        return self._git("rev-parse", ref).stdout.strip()

    def _dvc(self, arguments: list[str], log_file: Path) -> None:
        with open(log_file, "a", encoding="utf-8") as log:
            log.write(f"$ dvc {' '.join(arguments)}\n")
            log.flush()
            code = subprocess.run([sys.executable, "-m", "dvc", *arguments], cwd=self.root, env=_command_env(),
                                  stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        if code != 0:
            lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
            # The stage's own error (without the log format's time and logger) first, then DVC's.
            errors = list(dict.fromkeys(match.group(1) for line in lines
                                        if (match := STAGE_ERROR.match(line) or DVC_ERROR.match(line))))
            raise ExperimentError(f"`dvc {' '.join(arguments[:2])}` exited with {code}: "
                                  + " / ".join((errors or lines)[-ERROR_LINES:]) + f" (full log: {log_file})")

    def stages_run_by(self, targets: Sequence[str]) -> set[str]:
        """The targets and every stage upstream of them: the stages whose outputs an experiment leaves fresh."""
        from dvc.repo import Repo

        with Repo(str(self.root)) as repo:
            return {stage.name for target in targets for stage in repo.stage.collect(target, with_deps=True)}

    def outputs_of(self, rev: str) -> ExperimentOutputs:
        return ExperimentOutputs(self.root, rev)


class ExperimentOutputs:
    """The files an experiment's commit records, read from git or the DVC cache."""

    def __init__(self, root: Path, rev: str) -> None:
        from dvc.api import DVCFileSystem

        self.rev = rev
        self._fs = DVCFileSystem(repo=str(root), rev=rev)

    def read_bytes(self, path: str) -> bytes:
        from dvc.exceptions import DvcException

        try:
            return self._fs.read_bytes(path)
        except (OSError, DvcException) as error:
            raise ExperimentError(f"{path} of experiment {self.rev[:7]}: cannot read it ({error})") from None
