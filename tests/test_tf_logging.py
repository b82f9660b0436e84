"""TensorFlow's start-up log lines stay out of the kernel's stderr (fd 2)."""

import os
import subprocess
import sys

import pytest

from tlwidgets import tf_logging

LOG_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796115724.818611   14963 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796115737.535761   14963 cuda_platform.cc:52] failed call to cuInit: INTERNAL:"
    " CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not "
    "find cuda drivers on your machine, GPU will not be used.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
]


@pytest.mark.parametrize("line", LOG_LINES)
def test_tensorflow_log_lines_are_recognised(line):
    assert tf_logging.is_log_line(line)


@pytest.mark.parametrize("line", ["Traceback (most recent call last):",
                                  "ValueError: bad input", "I0000 is not a log line"])
def test_other_lines_are_not(line):
    assert not tf_logging.is_log_line(line)


def test_quiet_fd2_drops_log_lines_and_keeps_the_rest(capfd):
    with tf_logging.quiet_fd2():
        os.write(2, ("\n".join(LOG_LINES) + "\nsomething else went wrong\n").encode())
    err = capfd.readouterr().err
    assert err == "something else went wrong\n"


def test_the_environment_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv(tf_logging.ENV_VAR, "1")
    assert tf_logging.enabled()
    monkeypatch.setenv(tf_logging.ENV_VAR, "0")
    assert not tf_logging.enabled()


def test_importing_tensorflow_after_tlwidgets_writes_no_log_line():
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", tf_logging.ENV_VAR)}
    code = ("import tlwidgets, tensorflow as tf, keras; "
            "print(keras.layers.Dense(1)(tf.ones((1, 2))).shape)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 1)"
    assert done.stderr == "", done.stderr
