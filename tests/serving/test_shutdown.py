"""The SIGTERM flag goes in front of whatever handled SIGTERM before, and never swallows the signal."""
import os
import signal
import subprocess
import sys
import threading

import pytest

from deepfake_detector.serving import shutdown


@pytest.fixture
def fresh_flag(monkeypatch):
    """A flag of this test's own (the process-wide one must stay clear for the other tests' apps), and the SIGTERM
    handler put back afterwards."""
    monkeypatch.setattr(shutdown, "_stopping", threading.Event())
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_marks_the_process_stopping_then_runs_the_previous_handler(fresh_flag):
    seen = []
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(shutdown.is_stopping()))
    shutdown.flag_stop_on_sigterm()
    assert not shutdown.is_stopping()
    os.kill(os.getpid(), signal.SIGTERM)
    assert shutdown.is_stopping()
    assert seen == [True], "the previous handler ran once, after the flag was set"


def test_sigterm_still_ends_a_process_that_had_no_handler():
    script = ("import os, signal, time\nfrom deepfake_detector.serving.shutdown import flag_stop_on_sigterm\n"
              "flag_stop_on_sigterm()\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(10)\n")
    finished = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert finished.returncode == -signal.SIGTERM
