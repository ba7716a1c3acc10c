"""The models a development server holds: loading by version policy, lookup, status,
metadata, what a predict call will cost, and checked predict calls (the
transport-independent half of `serving.dev_server`).

Loading follows TF Serving: a model's versions are the integer-named folders under its
base_path; `model_version_policy` picks the latest N (default 1), all, or specific
ones; `version_labels` name versions. Versions are loaded once at start.

A version that fails to load (a truncated variables file, a half-copied folder) is
reported as TF Serving reports one that fails while it runs: in the model's status,
state END with the error and the version's folder, while every other version and
model keeps serving. Under the latest-N policy, when none of the N newest versions
loads, the newest older one that loads is served instead, as TF Serving keeps serving
its loaded version when a newer one fails. (TF Serving itself refuses to start when a
model's newest version fails at start-up: "N servable(s) did not become available".)
"""

import contextlib
import dataclasses
import logging
import math
import os
import re
import threading

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.eager import cancellation  # TF's own: no public API stops a running function
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from tf_factorgan.serving.wire import ServingError, invalid

DEFAULT_SIGNATURE = "serving_default"
_LOG = logging.getLogger(__name__)

# What a predict call allocates beyond its decoded inputs, per unit of input: running
# the exported graph and encoding its outputs. Measured as the serving process's peak
# RSS growth for one gRPC call (tiny test models, TF 2.21 on CPU), rounded up.
# A number of an image batch: 34 (uint8) to 45 (float32) bytes in the segmentation
# signatures (resizing, the label map at the input's size, the colour search, outputs).
_GRAPH_BYTES_PER_ELEMENT = 56
# A pixel of an encoded image in a string input: 37 bytes in predict_bytes (the decoded
# image, its float copy, the label map and its PNG).
_GRAPH_BYTES_PER_PIXEL = 64
# A sample resampled from `sample_rate` to the model's rate and back (separation): 74
# bytes per sample sent at 44.1 kHz, 96 at 22.05 kHz, 149 at 8 kHz. One part follows
# the samples sent (the outputs at their rate and their encoding), one the samples at
# the model's rate (STFTs, mask, the sources before resampling back).
_BYTES_PER_SAMPLE_SENT = 64
_BYTES_PER_MODEL_SAMPLE = 48
# The rates separation exports take, and the one they resample to: those of
# export.savedmodel.SeparationModule.SAMPLE_RATES and SpectrogramSettings.sample_rate,
# which a test keeps equal (importing them would bring SciPy, 50 MB, into the server).
SAMPLE_RATES = (8000, 192000)
_MODEL_RATE = 22050


def _not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)


class Cancellation:
    """Stops a predict call whose caller left: after `cancel()` (from any thread) the
    call's graph ends at its next op or loop iteration with CANCELLED, or does not
    start. A cancelled gRPC call used to compute to the end (three made the next call
    take 4.7 s and added 450 MB)."""

    def __init__(self):
        self._manager = cancellation.CancellationManager()

    def cancel(self) -> None:
        self._manager.start_cancel()

    @property
    def cancelled(self) -> bool:
        return self._manager.is_cancelled


# The CancellationManager of the function calls each thread makes. TF reads it from a
# process-wide global (cancellation.context(), set by get_cancelable_function), which
# concurrent calls on several threads would share; _cancellable makes it per thread.
_THREAD = threading.local()
_tf_cancellation_context = cancellation.context


def _this_threads_cancellation():
    return getattr(_THREAD, "manager", None) or _tf_cancellation_context()


@contextlib.contextmanager
def _cancellable(cancel: "Cancellation | None"):
    """Function calls made by this thread inside are stopped by `cancel`."""
    if cancel is None:
        yield
        return
    cancellation.context = _this_threads_cancellation  # idempotent; others keep TF's global
    _THREAD.manager = cancel._manager
    try:
        yield
    finally:
        _THREAD.manager = None


class Servable:
    """One loaded version: its SavedModel, signatures and SignatureDef protos."""

    def __init__(self, name: str, version: int, path: str):
        self.name, self.version, self.path = name, version, path
        self.model = tf.saved_model.load(path)
        self.signatures = dict(self.model.signatures)
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved_model.ParseFromString(f.read())
        self.signature_defs = saved_model.meta_graphs[0].signature_def

    def input_specs(self, signature_name: str) -> dict:
        """{input name: tf.TensorSpec} of a signature (NOT_FOUND if unknown)."""
        return dict(self._signature(signature_name).structured_input_signature[1])

    def _signature(self, signature_name: str):
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in self.signatures:
            raise _not_found(
                f"signature_name {signature_name!r} is not a signature of model "
                f"{self.name!r} version {self.version}; it has {sorted(self.signatures)}"
            )
        return self.signatures[signature_name]

    def memory_estimate(self, signature_name: str, sizes: dict, prefix: str) -> tuple[int, int]:
        """(bytes of the decoded inputs, bytes the graph and its outputs take) for a
        call of `signature_name` with inputs of `sizes` {name: wire.TensorSize}, known
        before anything is decoded.

        Decoded inputs count twice, the arrays and the tensors made of them. The graph:
        _GRAPH_BYTES_PER_ELEMENT per number; per float sample of a signature with a
        scalar integer `sample_rate` input (which resamples to _MODEL_RATE and back),
        _BYTES_PER_SAMPLE_SENT + _BYTES_PER_MODEL_SAMPLE x _MODEL_RATE / sample_rate;
        for string inputs their bytes once more (a map over them copies each) and
        _GRAPH_BYTES_PER_PIXEL per pixel of the encoded images among them.

        A signature with a scalar integer `num_samples` input (predict_samples) runs
        the graph that many times over: its graph bytes count num_samples times.

        Raises NOT_FOUND for an unknown signature, INVALID_ARGUMENT naming
        `<prefix>.sample_rate` for a rate outside SAMPLE_RATES.
        """
        specs = self.input_specs(signature_name)
        ratio = _resampling_ratio(specs, sizes, prefix)
        inputs = graph = 0
        for size in sizes.values():
            inputs += 2 * size.decoded_bytes
            if size.dtype == tf.string:
                graph += size.string_bytes + size.pixels * _GRAPH_BYTES_PER_PIXEL
            elif ratio is not None and size.dtype.is_floating:
                graph += size.elements * (_BYTES_PER_SAMPLE_SENT + math.ceil(_BYTES_PER_MODEL_SAMPLE * ratio))
            else:
                graph += size.elements * _GRAPH_BYTES_PER_ELEMENT
        return inputs, graph * _sample_count(specs, sizes)

    def predict(self, signature_name: str, inputs: dict, output_filter=(), cancel: Cancellation | None = None) -> dict:
        """{input: array} -> {output: array}, with the inputs checked against the
        signature first (names, dtypes, shapes) and graph errors as INVALID_ARGUMENT;
        CANCELLED once `cancel` is cancelled."""
        function = self._signature(signature_name)
        specs = self.input_specs(signature_name)
        if set(inputs) != set(specs):
            raise invalid(
                f"inputs {sorted(inputs)} do not match signature "
                f"{signature_name or DEFAULT_SIGNATURE!r}, which takes {sorted(specs)}"
            )
        tensors = {name: _checked(name, np.asarray(value), specs[name]) for name, value in inputs.items()}
        unknown = set(output_filter) - set(function.structured_outputs)
        if unknown:
            raise invalid(
                f"output_filter {sorted(unknown)} names no output of the signature; it has "
                f"{sorted(function.structured_outputs)}"
            )
        if cancel is not None and cancel.cancelled:
            raise ServingError("CANCELLED", "the caller cancelled the call before it ran")
        try:
            with _cancellable(cancel):
                outputs = function(**tensors)
        except tf.errors.CancelledError as error:
            raise ServingError("CANCELLED", "the caller cancelled the call; its graph stopped") from error
        except tf.errors.InvalidArgumentError as error:
            # Inputs the graph refuses (undecodable image, failed assertion).
            names = sorted(specs)
            about = f"input {names[0]!r}" if len(names) == 1 else f"inputs {names}"
            raise invalid(f"{about}: {_graph_message(error)}") from error
        except tf.errors.OpError as error:
            raise ServingError("INTERNAL", _graph_message(error)) from error
        return {
            name: value.numpy() for name, value in outputs.items()
            if not output_filter or name in output_filter
        }


def _resampling_ratio(specs: dict, sizes: dict, prefix: str) -> float | None:
    """_MODEL_RATE / sample_rate for a signature with a scalar integer `sample_rate`
    input (separation: its float inputs are resampled to _MODEL_RATE), else None (also
    when the request's sample_rate is not one number, which the signature refuses)."""
    spec, size = specs.get("sample_rate"), sizes.get("sample_rate")
    if spec is None or spec.shape.rank != 0 or not spec.dtype.is_integer or size is None or size.value is None:
        return None
    low, high = SAMPLE_RATES
    if not low <= size.value <= high:
        raise invalid(
            f"{prefix}.sample_rate must be within [{low}, {high}] Hz (the rates the model "
            f"resamples from), got {size.value}"
        )
    return _MODEL_RATE / size.value


def _sample_count(specs: dict, sizes: dict) -> int:
    """The request's `num_samples` for a signature with a scalar integer input of that
    name (at least 1; the graph refuses values out of its range), else 1."""
    spec, size = specs.get("num_samples"), sizes.get("num_samples")
    if spec is None or spec.shape.rank != 0 or not spec.dtype.is_integer or size is None or size.value is None:
        return 1
    return max(1, int(size.value))


def _graph_message(error: tf.errors.OpError) -> str:
    """The op's own message out of a graph error (which also lists Python frames and
    node names), without the "assertion failed: [...]" wrapping."""
    lines = [
        line for line in error.message.splitlines()
        if line and not line[0].isspace()
        and not line.startswith(("Graph execution error", "Detected at node"))
    ]
    message = lines[-1] if lines else error.message
    return re.sub(r"^assertion failed: \[(.*?)\s*\] (\[|$)", r"\1 \2", message).strip()


def _checked(name: str, array: np.ndarray, spec: tf.TensorSpec) -> tf.Tensor:
    if array.dtype == object or array.dtype.kind in "SU":
        dtype = tf.string
    else:
        dtype = tf.as_dtype(array.dtype)
    if dtype != spec.dtype:
        raise invalid(f"input {name!r} must be {spec.dtype.name}, got {dtype.name}")
    if not spec.shape.is_compatible_with(array.shape):
        expected = "any" if spec.shape.rank is None else [d if d is not None else -1 for d in spec.shape.as_list()]
        raise invalid(
            f"input {name!r} must have shape {expected} (-1: any size), got {list(array.shape)}"
        )
    return tf.constant(array, dtype=spec.dtype)


@dataclasses.dataclass(frozen=True)
class LoadFailure:
    """A version that did not load: `code` a tf.errors code, `message` its folder and
    the error, on one line."""

    code: int
    message: str


def _load(name: str, version: int, path: str) -> Servable | LoadFailure:
    """The version at `path`, or what kept it from loading (logged in one line)."""
    try:
        return Servable(name, version, path)
    except Exception as error:  # noqa: BLE001 - whatever fails, it is this version's failure
        code = error.error_code if isinstance(error, tf.errors.OpError) else tf.errors.UNKNOWN
        failure = LoadFailure(code, " ".join(f"{path}: {type(error).__name__}: {error}".split())[:1000])
        _LOG.error("model %r version %d did not load: %s", name, version, failure.message)
        return failure


class ModelRepository:
    """The models of a ModelServerConfig, loaded once (lookups need no lock).

    Raises ValueError (or FileNotFoundError, for a missing base_path or version folder)
    naming the model, when a version label names a version not chosen by the policy,
    or when no version of any model loads.
    """

    def __init__(self, config: model_server_config_pb2.ModelServerConfig, config_dir: str = "."):
        self._models: dict[str, dict[int, Servable]] = {}
        self._failed: dict[str, dict[int, LoadFailure]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        for model in config.model_config_list.config:
            base = model.base_path
            if not os.path.isabs(base):
                base = os.path.join(config_dir, base)
            self._models[model.name], self._failed[model.name] = _load_versions(model, base)
            self._labels[model.name] = dict(model.version_labels)
            known = set(self._models[model.name]) | set(self._failed[model.name])
            for label, version in self._labels[model.name].items():
                if version not in known:
                    raise ValueError(
                        f"model {model.name!r}: version_labels {label!r} names version "
                        f"{version}, which is not loaded ({sorted(self._models[model.name])})"
                    )
        if not any(self._models.values()):
            failures = [f.message for failed in self._failed.values() for f in failed.values()]
            raise ValueError(f"no model version loaded: {'; '.join(failures)}")

    @property
    def model_names(self) -> list:
        return sorted(self._models)

    def versions(self, name: str) -> list:
        """The loaded versions of `name`, oldest first (empty when none loaded)."""
        return sorted(self._models[name])

    def _requested(self, name: str, version, label: str) -> int | None:
        """The version asked for by number or label (None: the latest, or every one);
        NOT_FOUND for an unknown model or label."""
        if name not in self._models:
            raise _not_found(f"model {name!r} is not served; this server has {self.model_names}")
        if label:
            if label not in self._labels[name]:
                raise _not_found(f"model {name!r} has no version label {label!r}")
            return self._labels[name][label]
        return int(version) if version else None

    def _no_such_version(self, name: str, version: int) -> ServingError:
        return _not_found(
            f"model {name!r} has no version {version}; served versions are {sorted(self._models[name])}"
        )

    def resolve(self, name: str, version=None, label: str = "") -> Servable:
        """The servable of `name` at `version` / `label` (default: the latest).
        NOT_FOUND for an unknown model, version or label, and for a version that did not
        load, with its error."""
        version = self._requested(name, version, label)
        versions, failed = self._models[name], self._failed[name]
        if version is None:
            if not versions:
                raise _not_found(
                    f"model {name!r} has no version that loaded: "
                    + "; ".join(failed[v].message for v in sorted(failed, reverse=True))
                )
            return versions[max(versions)]
        if version in failed:
            raise _not_found(f"model {name!r} version {version} did not load: {failed[version].message}")
        if version not in versions:
            raise self._no_such_version(name, version)
        return versions[version]

    def status(self, name: str, version=None, label: str = "") -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatusResponse as TF Serving gives it: every version tried, newest
        first, or the one asked for; AVAILABLE, or END with its load error."""
        version = self._requested(name, version, label)
        tried = sorted(set(self._models[name]) | set(self._failed[name]), reverse=True)
        if version is not None:
            if version not in tried:
                raise self._no_such_version(name, version)
            tried = [version]
        response = get_model_status_pb2.GetModelStatusResponse()
        for number in tried:
            status = response.model_version_status.add()
            status.version = number
            failure = self._failed[name].get(number)
            if failure is None:
                status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
                status.status.SetInParent()  # error_code OK, as TF Serving reports it
            else:
                status.state = get_model_status_pb2.ModelVersionStatus.END
                status.status.error_code = failure.code
                status.status.error_message = failure.message
        return response

    def metadata(self, name: str, version=None, label: str = "") -> get_model_metadata_pb2.GetModelMetadataResponse:
        """GetModelMetadataResponse with the "signature_def" metadata TF Serving gives."""
        servable = self.resolve(name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in servable.signature_defs.items():
            if not key.startswith("__"):  # TF-internal entries such as __saved_model_init_op
                signature_map.signature_def[key].CopyFrom(signature_def)
        response.metadata["signature_def"].Pack(signature_map)
        return response


def _load_versions(model, base: str) -> tuple[dict, dict]:
    """({version: Servable}, {version: LoadFailure}) of the versions `model`'s policy
    picks under `base`; under the latest-N policy, when none of them loads, the newest
    older version that loads too (see the module docstring)."""
    if not os.path.isdir(base):
        raise FileNotFoundError(f"model {model.name!r}: base_path {base} is not a folder")
    present = sorted(int(v) for v in os.listdir(base) if v.isdigit() and os.path.isdir(os.path.join(base, v)))
    if not present:
        raise FileNotFoundError(
            f"model {model.name!r}: base_path {base} holds no version folders (1/, 2/, ...)"
        )
    policy = model.model_version_policy
    which = policy.WhichOneof("policy_choice")
    older = []  # newest first: tried under the latest-N policy until one loads
    if which == "all":
        chosen = present
    elif which == "specific":
        missing = sorted(set(policy.specific.versions) - set(present))
        if missing:
            raise FileNotFoundError(f"model {model.name!r}: versions {missing} not under {base}")
        chosen = sorted(set(policy.specific.versions))
    else:
        count = max(policy.latest.num_versions if which == "latest" else 1, 1)
        chosen, older = present[-count:], present[:-count][::-1]
    loaded, failed = {}, {}

    def load(version: int) -> None:
        result = _load(model.name, version, os.path.join(base, str(version)))
        (failed if isinstance(result, LoadFailure) else loaded)[version] = result

    for version in chosen:
        load(version)
    for version in older:
        if loaded:
            break
        load(version)
    return loaded, failed
