"""Scale-out settings: roles from TF_CONFIG, strategy choice, batch and learning-rate rules, mixed
precision and the model copy it trains; one tiny one_device run in float16."""
from __future__ import annotations

import contextlib
import json
import logging
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from deepfake_detector.components.model import distribution, trainer
from deepfake_detector.components.model.distribution import (
    LOCAL_ROLE,
    WORKER_DIR_VARIABLE,
    ClusterRole,
    cluster_role,
    global_batch_size,
    make_strategy,
    model_for_replicas,
    parse_tf_config,
    resolve_mixed_precision,
    scaled_learning_rate,
    worker_dir,
)
from deepfake_detector.components.model.factory import ModelPreparer, build_model
from deepfake_detector.components.model.trainer import Trainer
from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.pipeline import train as train_stage
from deepfake_detector.pipeline.runner import StageContext
from tests.pipeline.trainer_helpers import IMAGE_SIZE, model_config, training_config, write_dataset

WORKERS = ["host0:2222", "host1:2222", "host2:2222"]


def tf_config(cluster: dict, task_type: str, index: int) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


# Roles -------------------------------------------------------------------------------------

def test_task_of_type_chief_is_the_chief():
    role = parse_tf_config(tf_config({"chief": ["boss:1"], "worker": WORKERS}, "chief", 0))
    assert role == ClusterRole(is_chief=True, task_type="chief", task_index=0, num_workers=4)


def test_worker_zero_is_not_chief_when_the_cluster_has_one():
    role = parse_tf_config(tf_config({"chief": ["boss:1"], "worker": WORKERS}, "worker", 0))
    assert not role.is_chief


def test_worker_zero_is_the_chief_of_a_cluster_without_one():
    assert parse_tf_config(tf_config({"worker": WORKERS}, "worker", 0)).is_chief
    other = parse_tf_config(tf_config({"worker": WORKERS}, "worker", 2))
    assert (other.is_chief, other.task_index, other.num_workers) == (False, 2, 3)


@pytest.mark.parametrize("text", [None, "", "  "])
def test_missing_tf_config_is_an_error_naming_it(text):
    with pytest.raises(ConfigError, match="TF_CONFIG is not set.*multi_worker"):
        parse_tf_config(text)


@pytest.mark.parametrize("text, message", [
    ("{cluster: 1", "TF_CONFIG is not valid JSON"),
    ('["worker"]', "TF_CONFIG needs a 'cluster' and a 'task'"),
    (tf_config({"worker": WORKERS}, "worker", 3), r"TF_CONFIG: task.index 3 .*0\.\.2"),
    (tf_config({"worker": WORKERS}, "chief", 0), "TF_CONFIG: task.type 'chief' is not a task type"),
    (tf_config({"worker": WORKERS, "ps": ["p:1"]}, "worker", 0), r"TF_CONFIG: cluster task types \['ps'\]"),
    (tf_config({"worker": "host0:2222"}, "worker", 0), "TF_CONFIG: cluster.worker must be a list"),
])
def test_malformed_tf_config_is_an_error_naming_it(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_tf_config(text)


def test_single_machine_strategies_ignore_tf_config_with_a_warning(caplog):
    environ = {"TF_CONFIG": tf_config({"worker": WORKERS}, "worker", 1)}
    with caplog.at_level(logging.WARNING, logger=distribution.__name__):
        assert cluster_role("one_device", environ) == LOCAL_ROLE
    assert "TF_CONFIG is set but train.strategy is one_device" in caplog.text


def test_multi_worker_role_comes_from_tf_config():
    environ = {"TF_CONFIG": tf_config({"worker": WORKERS}, "worker", 1)}
    assert cluster_role("multi_worker", environ).name == "worker:1"


def test_multi_worker_strategy_without_tf_config_fails_before_tensorflow_tries(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG is not set"):
        make_strategy("multi_worker")


def test_worker_dir_is_the_variable_when_set(tmp_path):
    role = parse_tf_config(tf_config({"worker": WORKERS}, "worker", 1))
    assert worker_dir(role, "artifacts/training", {WORKER_DIR_VARIABLE: str(tmp_path)}) == tmp_path


def test_worker_dir_is_stable_per_task_so_a_restart_finds_its_backup():
    one, two = (parse_tf_config(tf_config({"worker": WORKERS}, "worker", i)) for i in (1, 2))
    assert worker_dir(one, "artifacts/training", {}) == worker_dir(one, "artifacts/training", {})
    assert worker_dir(one, "artifacts/training", {}) != worker_dir(two, "artifacts/training", {})


# Strategies ----------------------------------------------------------------------------------

def test_auto_strategy_on_one_device_is_tensorflows_default(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    strategy = make_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_one_device_strategy_has_one_replica():
    strategy = make_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1


def test_mirrored_strategy_spans_every_local_gpu():
    strategy = make_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == max(1, len(tf.config.list_physical_devices("GPU")))


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="train.strategy = 'horovod'"):
        make_strategy("horovod")


# Batch and learning rate -----------------------------------------------------------------------

def test_global_batch_is_per_replica_batch_times_replicas():
    assert global_batch_size(32, 4) == 128
    assert global_batch_size(32, 1) == 32
    with pytest.raises(ValueError):
        global_batch_size(0, 2)


def test_linear_rule_scales_learning_rate_with_replicas():
    assert scaled_learning_rate(1e-3, 4, "linear") == pytest.approx(4e-3)
    assert scaled_learning_rate(1e-3, 1, "linear") == pytest.approx(1e-3)


def test_none_rule_keeps_learning_rate():
    assert scaled_learning_rate(1e-3, 8, "none") == 1e-3
    with pytest.raises(ConfigError, match="learning_rate_scaling = 'sqrt'"):
        scaled_learning_rate(1e-3, 8, "sqrt")


# Mixed precision -------------------------------------------------------------------------------

class FakeGpu:
    def __init__(self, capability):
        self.capability = capability


@pytest.fixture
def gpus(monkeypatch):
    """Pretend these GPUs (by compute capability) are visible."""
    def install(*capabilities):
        devices = [FakeGpu(c) for c in capabilities]
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: devices if kind == "GPU" else [])
        monkeypatch.setattr(tf.config.experimental, "get_device_details",
                            lambda device: {"compute_capability": device.capability})
    return install


def test_mixed_precision_auto_is_off_without_a_gpu(gpus):
    gpus()
    assert resolve_mixed_precision("auto") is False


def test_mixed_precision_auto_needs_every_gpu_at_capability_7(gpus):
    gpus((8, 0), (7, 0))
    assert resolve_mixed_precision("auto") is True
    gpus((8, 0), (6, 1))
    assert resolve_mixed_precision("auto") is False


def test_mixed_precision_on_and_off_are_obeyed(gpus):
    gpus((9, 0))
    assert resolve_mixed_precision("off") is False
    gpus()
    assert resolve_mixed_precision("on") is True


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return build_model(model_config(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")


def test_mixed_precision_model_computes_hidden_layers_in_float16_and_outputs_float32(detector, images):
    model = model_for_replicas(detector, mixed_precision=True, synchronized_batch_norm=False)
    backbone = model.get_layer("backbone")
    assert {layer.compute_dtype for layer in backbone.layers[1:]} == {"float16"}
    assert model.get_layer("p_fake").compute_dtype == "float32"
    assert {variable.dtype for variable in model.weights} == {"float32"}
    pooled = keras.Model(model.inputs, model.get_layer("pool").output).predict(images, verbose=0)
    assert pooled.dtype == np.float16
    scores = model.predict(images, verbose=0)
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()


def test_model_copy_keeps_the_weights(detector):
    model = model_for_replicas(detector, mixed_precision=True, synchronized_batch_norm=True)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), detector.get_weights(), strict=True))


def test_several_replicas_get_batch_norm_over_the_global_batch(detector):
    model = model_for_replicas(detector, mixed_precision=False, synchronized_batch_norm=True)
    norms = [layer for layer in model.get_layer("backbone").layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.synchronized for layer in norms)
    assert model.get_layer("backbone").layers[1].compute_dtype == "float32"


def test_model_is_unchanged_when_nothing_is_asked(detector):
    assert model_for_replicas(detector, mixed_precision=False, synchronized_batch_norm=False) is detector


# The train stage -------------------------------------------------------------------------------

class RecordingTracker:
    """Stands in for ExperimentTracker: records whether a run was opened."""

    def __init__(self):
        self.opened = False
        self.run_id, self.uri = "run-1", "sqlite:///mlflow.db"

    @contextlib.contextmanager
    def run(self, name, run_id=None, tags=None):
        self.opened = True
        yield self

    def log_params(self, params): ...
    def log_metrics(self, metrics, step=None): ...
    def log_artifact(self, path, artifact_path=None): ...
    def epoch_logger(self): return keras.callbacks.Callback()


@pytest.fixture
def train_stage_as(tmp_path, monkeypatch):
    """Run the train stage as one task of a two-worker cluster, with a stand-in Trainer."""
    def run(index: int):
        config = training_config(tmp_path, tmp_path / "base.h5", tmp_path, tmp_path / "manifest.csv",
                                 strategy="multi_worker")
        trained = []

        class StandInTrainer:
            def __init__(self, config):
                self.config = config

            def run(self, callbacks=()):
                trained.append(self.config)
                return SimpleNamespace(best_val_auc=0.9, best_epoch=0, epochs_run=1, history_file=tmp_path / "h.csv",
                                       val_labels=np.array([0, 1, 0, 1]), val_probs=np.array([0.1, 0.9, 0.2, 0.8]),
                                       val_videos=None)

        monkeypatch.setattr(trainer, "Trainer", StandInTrainer)
        monkeypatch.setenv("TF_CONFIG", tf_config({"worker": WORKERS[:2]}, "worker", index))
        tracker = RecordingTracker()
        manager = SimpleNamespace(get_training_config=lambda: config, params_as_written=dict)  # no sections
        train_stage.run(StageContext(config=manager, tracker=tracker))
        return config, tracker, trained
    return run


def test_only_the_chief_opens_the_mlflow_run_and_writes_its_file(train_stage_as):
    config, tracker, trained = train_stage_as(0)
    assert tracker.opened and len(trained) == 1
    assert json.loads(config.run_file.read_text())["run_id"] == "run-1"


def test_other_workers_train_without_tracking(train_stage_as):
    config, tracker, trained = train_stage_as(1)
    assert not tracker.opened and len(trained) == 1
    assert not config.run_file.exists()


# Training ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def float16_run(tmp_path_factory):
    """One head epoch in float16 on the one_device strategy."""
    root = tmp_path_factory.mktemp("float16")
    dataset_dir, manifest = write_dataset(root, {"train": (8, 8), "val": (4, 4), "test": (1, 1)})
    base_model = ModelPreparer(model_config(root)).run().model_file
    config = training_config(root, base_model, dataset_dir, manifest, strategy="one_device", mixed_precision="on",
                             head_epochs=1, fine_tune_epochs=0)
    return config, Trainer(config).run()


@pytest.mark.slow
def test_one_device_float16_training_writes_the_declared_outputs(float16_run):
    config, result = float16_run
    assert result.model_file == config.model_file and config.model_file.is_file()
    assert result.epochs_run == 1 and config.history_file.is_file()
    assert not config.backup_dir.exists()


@pytest.mark.slow
def test_model_trained_in_float16_saves_a_float32_model(float16_run, images):
    config, _ = float16_run
    model = keras.models.load_model(config.model_file, compile=False)
    assert {layer.compute_dtype for layer in model.get_layer("backbone").layers} == {"float32"}
    scores = model.predict(images, verbose=0)
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()
