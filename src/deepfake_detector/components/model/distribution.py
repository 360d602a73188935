"""Scale-out for training: which tf.distribute strategy runs it, this process's role in a cluster,
how batch size and learning rate follow the number of replicas, and mixed precision.

One `params.yaml` serves every process of a cluster; each process learns its role from the
standard TF_CONFIG environment variable, as TensorFlow's own MultiWorkerMirroredStrategy does.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deepfake_detector.contracts.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

logger = logging.getLogger(__name__)

TF_CONFIG_VARIABLE = "TF_CONFIG"
# Where a non-chief worker writes its copies of the outputs its chief writes for real.
WORKER_DIR_VARIABLE = "DEEPFAKE_DETECTOR_WORKER_DIR"
STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")
CLUSTER_TASK_TYPES = ("chief", "worker")  # what MultiWorkerMirroredStrategy trains with
MIXED_PRECISION_POLICY = "mixed_float16"
# Tensor cores, which make float16 worth it, start with Volta (compute capability 7.0).
MIXED_PRECISION_MIN_CAPABILITY = (7, 0)
TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')


@dataclass(frozen=True)
class ClusterRole:
    """This process's place in a training cluster; a lone process is the chief of a cluster of one."""

    is_chief: bool
    task_type: str
    task_index: int
    num_workers: int

    @property
    def name(self) -> str:
        return f"{self.task_type}:{self.task_index}"


LOCAL_ROLE = ClusterRole(is_chief=True, task_type="chief", task_index=0, num_workers=1)


def parse_tf_config(text: str | None) -> ClusterRole:
    """The role TF_CONFIG gives this process: the chief is task type "chief", or worker 0 when the
    cluster has no chief (TensorFlow's convention). Raises ConfigError naming TF_CONFIG otherwise."""
    if not text or not text.strip():
        raise ConfigError(f"{TF_CONFIG_VARIABLE} is not set: train.strategy multi_worker needs it to describe "
                          f"the cluster and this process's task, e.g. {TF_CONFIG_EXAMPLE}")
    try:
        settings = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{TF_CONFIG_VARIABLE} is not valid JSON ({error}); expected e.g. "
                          f"{TF_CONFIG_EXAMPLE}") from None
    cluster = settings.get("cluster") if isinstance(settings, Mapping) else None
    task = settings.get("task") if isinstance(settings, Mapping) else None
    if not isinstance(cluster, Mapping) or not isinstance(task, Mapping):
        raise ConfigError(f"{TF_CONFIG_VARIABLE} needs a 'cluster' and a 'task' object; got {text!r}")
    unknown = sorted(set(cluster) - set(CLUSTER_TASK_TYPES))
    if unknown:
        raise ConfigError(f"{TF_CONFIG_VARIABLE}: cluster task types {unknown} are not supported; "
                          f"multi_worker training uses only {list(CLUSTER_TASK_TYPES)}")
    sizes = {}
    for task_type, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and a for a in addresses):
            raise ConfigError(f"{TF_CONFIG_VARIABLE}: cluster.{task_type} must be a list of 'host:port' "
                              f"strings; got {addresses!r}")
        sizes[task_type] = len(addresses)
    if sizes.get("chief", 0) > 1:
        raise ConfigError(f"{TF_CONFIG_VARIABLE}: a cluster has at most one chief; got {sizes['chief']}")
    task_type, task_index = task.get("type"), task.get("index")
    if task_type not in sizes:
        raise ConfigError(f"{TF_CONFIG_VARIABLE}: task.type {task_type!r} is not a task type of the cluster "
                          f"{sorted(sizes)}")
    if isinstance(task_index, bool) or not isinstance(task_index, int) or not 0 <= task_index < sizes[task_type]:
        raise ConfigError(f"{TF_CONFIG_VARIABLE}: task.index {task_index!r} is not an index into "
                          f"cluster.{task_type} (0..{sizes[task_type] - 1})")
    has_chief = sizes.get("chief", 0) == 1
    is_chief = task_type == "chief" or (not has_chief and task_index == 0)
    return ClusterRole(is_chief=is_chief, task_type=task_type, task_index=task_index,
                       num_workers=sum(sizes.values()))


def cluster_role(strategy: str, environ: Mapping[str, str] | None = None) -> ClusterRole:
    """This process's role: from TF_CONFIG for multi_worker; otherwise it trains alone, as chief."""
    environ = os.environ if environ is None else environ
    if strategy == "multi_worker":
        return parse_tf_config(environ.get(TF_CONFIG_VARIABLE))
    if environ.get(TF_CONFIG_VARIABLE):
        logger.warning("%s is set but train.strategy is %s: this process trains alone and ignores it",
                       TF_CONFIG_VARIABLE, strategy)
    return LOCAL_ROLE


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for params.yaml's train.strategy.

    auto: MirroredStrategy over all local GPUs when there are several, else TensorFlow's default
    strategy (the single GPU or the CPU, exactly as without tf.distribute). mirrored: all local
    GPUs (or the CPU). multi_worker: MultiWorkerMirroredStrategy over the cluster in TF_CONFIG;
    create it before other TensorFlow work, as it configures the runtime. one_device: the first
    GPU, else the CPU.
    """
    import tensorflow as tf

    # Physical devices only: listing logical ones would initialize the runtime too early for
    # MultiWorkerMirroredStrategy.
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "multi_worker":
        parse_tf_config(os.environ.get(TF_CONFIG_VARIABLE))  # a clear error before TensorFlow's own
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"params.yaml: train.strategy = {name!r}: expected one of {list(STRATEGIES)}")


def global_batch_size(per_replica: int, replicas: int) -> int:
    """Images per training step across all replicas: train.batch_size is per replica, so each
    device keeps the batch it was tuned for and more devices means larger steps."""
    if per_replica < 1 or replicas < 1:
        raise ValueError(f"batch size per replica ({per_replica}) and replicas ({replicas}) must be >= 1")
    return per_replica * replicas


def scaled_learning_rate(learning_rate: float, replicas: int, rule: str) -> float:
    """The learning rate for a global batch `replicas` times the per-replica one.

    linear: multiply by the number of replicas (Goyal et al. 2017, "Accurate, Large Minibatch SGD":
    when the batch grows k-fold, grow the learning rate k-fold to keep the per-image update size).
    none: leave it as params.yaml says, e.g. when the rate was tuned for the global batch.
    """
    if rule == "linear":
        return learning_rate * replicas
    if rule == "none":
        return learning_rate
    raise ConfigError(f"params.yaml: train.learning_rate_scaling = {rule!r}: expected linear or none")


def resolve_mixed_precision(setting: str) -> bool:
    """Whether to train in float16: on forces it, off never, auto only when there is a GPU and
    every visible one has compute capability >= 7.0 (tensor cores; older GPUs and CPUs gain
    nothing or run slower)."""
    if setting == "off":
        return False
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if setting == "on":
        if not gpus:
            logger.warning("train.mixed_precision is on without a GPU: float16 on the CPU is slow")
        return True
    if setting != "auto":
        raise ConfigError(f"params.yaml: train.mixed_precision = {setting!r}: expected auto, on or off")
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus]
    return bool(capabilities) and all(c is not None and tuple(c) >= MIXED_PRECISION_MIN_CAPABILITY
                                      for c in capabilities)


def model_for_replicas(model: keras.Model, *, mixed_precision: bool, synchronized_batch_norm: bool) -> keras.Model:
    """A copy of `model`, same weights, adapted to how it will be trained; `model` itself if no
    change is asked. Call it inside the strategy's scope so the copy's variables are distributed.

    mixed_precision: every layer computes in float16 (variables stay float32) except the layers
    that produce the model's outputs, so P(fake) and the loss on it stay float32 and stable.
    synchronized_batch_norm: BatchNormalization uses the statistics of the global batch, not of
    each replica's share: the math of one device at the global batch size, and moving statistics
    that are the same on every replica (otherwise each replica, and so each worker's saved model,
    would keep its own).
    """
    if not (mixed_precision or synchronized_batch_norm):
        return model
    import keras

    outputs = set(model.output_names)

    def clone_layer(layer):
        settings = layer.get_config()
        if mixed_precision and layer.name not in outputs:
            settings["dtype"] = MIXED_PRECISION_POLICY
        if synchronized_batch_norm and isinstance(layer, keras.layers.BatchNormalization):
            settings["synchronized"] = True
        return layer.__class__.from_config(settings)

    copy = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def prepare_multi_worker_fit(model: keras.Model, strategy: tf.distribute.Strategy, element_spec) -> None:
    """Work around Keras 3's fit under MultiWorkerMirroredStrategy.

    Keras 3 (checked up to 3.15) fails there in two places: before the first step it averages a real
    batch across workers to learn the input shapes, with a reduce that rejects (x, y, weights)
    tuples; and after each step it averages the scalar metrics with a reduce along axis 0, which
    a scalar does not have. This builds the model's compiled state from the dataset's element spec
    instead, and gives the per-step metrics a length-1 axis to reduce along. Epoch-end logs (what
    callbacks and history see) are read from the metric variables, summed over all replicas, as
    on one device. Call after the model is made in the strategy's scope; compile may follow.
    """
    import keras
    import tensorflow as tf

    for name in ("_maybe_symbolic_build", "_symbolic_build", "train_step", "test_step"):
        if not hasattr(model, name):
            raise ModelError(f"Keras {keras.__version__} has no Model.{name}: train.strategy multi_worker needs "
                             f"the work-around in {__name__} updated for it, or Keras 3.15")

    def build_from_spec(self, iterator=None, data_batch=None):
        with strategy.scope():
            self._symbolic_build(data_batch=element_spec)

    def with_axis(step):
        def ranked_step(data):
            return {key: tf.reshape(value, [1]) for key, value in step(data).items()}
        return ranked_step

    model._maybe_symbolic_build = types.MethodType(build_from_spec, model)
    model.train_step = with_axis(model.train_step)
    model.test_step = with_axis(model.test_step)


def workers_agree(strategy: tf.distribute.Strategy, values: Sequence[int]) -> bool:
    """Whether every worker passed the same integers. A collective: every worker must call it."""
    import tensorflow as tf

    local = tf.constant(list(values), dtype=tf.int64)
    gathered = strategy.gather(strategy.run(lambda: local), axis=0)
    rows = tf.reshape(gathered, (-1, len(values)))
    return bool(tf.reduce_all(rows == rows[0]))


def worker_dir(role: ClusterRole, key: str | Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where a non-chief worker writes the files its chief writes for real: $DEEPFAKE_DETECTOR_WORKER_DIR
    if set, else a folder in the system's temporary directory named for the task and `key`. The
    path is the same on every start, so a restarted worker finds its own backup to resume from."""
    environ = os.environ if environ is None else environ
    if environ.get(WORKER_DIR_VARIABLE):
        return Path(environ[WORKER_DIR_VARIABLE])
    digest = hashlib.sha256(str(Path(key).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"deepfake-detector-{role.task_type}-{role.task_index}-{digest}"
