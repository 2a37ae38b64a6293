"""Model files: a versioned, documented, pickle-free format.

See the :mod:`softmaxkit.io` module docstring for the layout.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io as _io
import json
import math
import numbers
import os
import zipfile
import zlib
from importlib import import_module

import numpy as np

from ._atomic import atomic_path

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "save_model",
    "load_model",
]

FORMAT_NAME = "softmaxkit-model"
FORMAT_VERSION = 1
_META = "metadata.json"
_ARRAYS = "arrays.npz"
_MAX_META_BYTES = 16 * 2**20

# The only classes a model file may name.  The file supplies a *key* of this
# table; the class itself is looked up here, never imported from a name
# taken from the file.
#   required : fitted attributes that must be present
#   optional : fitted attributes saved when present
_ESTIMATORS = {
    "SoftmaxRegression": {
        "module": "softmaxkit.models",
        "required": ("coef_", "intercept_", "classes_", "n_features_in_", "n_iter_",
                     "loss_curve_"),
        "optional": ("feature_names_in_",),
    },
    "OneVsRestLogistic": {
        "module": "softmaxkit.models",
        "required": ("coef_", "intercept_", "classes_", "n_features_in_", "n_iter_"),
        "optional": ("feature_names_in_",),
    },
    "TemperatureScaler": {
        "module": "softmaxkit.models",
        "required": ("temperature_", "n_classes_"),
        # nll_, nll_uncalibrated_: optional, so that files written before they were
        # stored still load (without them)
        "optional": ("n_iter_", "nll_", "nll_uncalibrated_"),
    },
}


class ModelFileError(ValueError):
    """A model file cannot be written or read: foreign, truncated, tampered
    with, written by a newer softmaxkit, or inconsistent.  The message names
    the file and the problem."""


# ---------------------------------------------------------------- parameters
def _encode_param(name, value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isfinite(v):
            return v
        return {"$float": repr(v)}  # 'inf', '-inf', 'nan'
    if isinstance(value, tuple):
        return {"$tuple": [_encode_param(name, v) for v in value]}
    if isinstance(value, list):
        return [_encode_param(name, v) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[_encode_param(name, k), _encode_param(name, v)]
                          for k, v in value.items()]}
    raise ModelFileError(
        f"cannot save parameter {name!r} of type {type(value).__name__}: model files hold "
        "only numbers, strings, booleans, None and lists/tuples/dicts of those."
    )


def _decode_param(value):
    if isinstance(value, list):
        return [_decode_param(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$float"} and value["$float"] in ("inf", "-inf", "nan"):
            return float(value["$float"])
        if set(value) == {"$tuple"} and isinstance(value["$tuple"], list):
            return tuple(_decode_param(v) for v in value["$tuple"])
        if set(value) == {"$dict"} and isinstance(value["$dict"], list):
            return {_hashable(_decode_param(k)): _decode_param(v) for k, v in value["$dict"]}
        raise ValueError(f"unknown encoded value {value!r}")
    return value


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


# -------------------------------------------------------------------- arrays
def _to_saveable(name, value):
    """Return (array, kind) for a fitted attribute.  kind records how to turn
    the stored array back into the attribute: 'int', 'float', 'array' or
    'object-str' (an object array of str stored as fixed-width unicode)."""
    if isinstance(value, (bool, np.bool_)):
        return np.asarray(value), "bool"
    if isinstance(value, (numbers.Integral, np.integer)):
        return np.asarray(int(value), dtype=np.int64), "int"
    if isinstance(value, (numbers.Real, np.floating)):
        return np.asarray(float(value), dtype=np.float64), "float"
    arr = np.asarray(value)
    if arr.dtype.kind == "O":
        flat = arr.ravel().tolist()
        if not all(isinstance(v, str) for v in flat):
            raise ModelFileError(
                f"cannot save fitted attribute {name!r}: an object array that is not all "
                "strings cannot be stored without pickle."
            )
        _check_no_trailing_nul(name, flat)
        return np.array(flat, dtype=str).reshape(arr.shape), "object-str"
    if arr.dtype.kind not in "biufU":
        raise ModelFileError(
            f"cannot save fitted attribute {name!r} of dtype {arr.dtype}."
        )
    return np.ascontiguousarray(arr), "array"


def _check_no_trailing_nul(name, strings):
    # fixed-width unicode pads with NULs, so it drops trailing ones: 'a\x00' would
    # come back as 'a' (and ['a', 'a\x00'] as two equal labels)
    bad = [v for v in strings if v.endswith("\x00")]
    if bad:
        raise ModelFileError(
            f"cannot save fitted attribute {name!r}: {bad[0]!r} ends with a NUL character "
            "('\\x00'), which a model file cannot store exactly (it would come back without "
            "it); remove trailing NULs from the labels and names before fitting."
        )


def _from_saved(arr, kind):
    if kind == "int":
        return int(arr)
    if kind == "float":
        return float(arr)
    if kind == "bool":
        return bool(arr)
    if kind == "object-str":
        return arr.astype(object)
    return arr


def _arrays_sha256(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + b"\0")
        h.update(a.dtype.str.encode() + b"\0")
        h.update(repr(tuple(a.shape)).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


def _canonical(meta):
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def _metadata_sha256(meta):
    body = {k: v for k, v in meta.items() if k != "metadata_sha256"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def _estimator_name(model):
    cls = type(model)
    for name, spec in _ESTIMATORS.items():
        if cls.__name__ == name and cls.__module__.startswith("softmaxkit."):
            return name, spec
    raise ModelFileError(
        f"cannot save a {cls.__name__}: model files hold only "
        f"{', '.join(_ESTIMATORS)} estimators."
    )


def _json_value(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


# ------------------------------------------------------ partial_fit optimiser state
# SoftmaxRegression.partial_fit keeps its optimiser in ``model._partial``:
# {"opt": Adam, "x": reduced coefficients, "rng": RandomState, "passes": int}.
# It is stored so that a loaded model continues exactly as the saved one would:
# arrays under these names in arrays.npz (manifest kind "optimizer"), scalars
# under the "optimizer" metadata key.
_OPT_ARRAYS = {"x": "_optimizer_x", "m": "_optimizer_m", "v": "_optimizer_v",
               "rng_key": "_optimizer_rng_key"}
_OPT_PARAMS = ("learning_rate", "beta1", "beta2", "eps", "decay")


def _optimizer_state(name, model):
    """(arrays, metadata) of a partial_fit optimiser, or (None, None) when there is none."""
    st = getattr(model, "_partial", None) if name == "SoftmaxRegression" else None
    if st is None:
        return None, None
    opt = st.get("opt") if isinstance(st, dict) else None
    rng = st.get("rng") if isinstance(st, dict) else None
    ok = (isinstance(st, dict) and set(st) == {"opt", "x", "rng", "passes"}
          and type(opt).__name__ == "Adam" and isinstance(rng, np.random.RandomState)
          and all(hasattr(opt, a) for a in (*_OPT_PARAMS, "method", "t", "m", "v")))
    state = rng.get_state() if ok else None
    if not ok or state[0] != "MT19937":
        raise ModelFileError(
            f"cannot save this {name}: its partial_fit optimiser state has an unknown form "
            "(set model._partial = None to save it without that state, so that the next "
            "partial_fit restarts the optimiser)."
        )
    arrays = {_OPT_ARRAYS["x"]: np.array(st["x"], dtype=np.float64),
              _OPT_ARRAYS["rng_key"]: np.array(state[1], dtype=np.uint32)}
    if opt.m is not None:
        arrays[_OPT_ARRAYS["m"]] = np.array(opt.m, dtype=np.float64)
        arrays[_OPT_ARRAYS["v"]] = np.array(opt.v, dtype=np.float64)
    meta = {"kind": "Adam", "method": str(opt.method), "t": int(opt.t),
            "passes": int(st["passes"]),
            "rng": {"bit_generator": "MT19937", "pos": int(state[2]),
                    "has_gauss": int(state[3]), "cached_gaussian": float(state[4])}}
    meta.update({k: float(getattr(opt, k)) for k in _OPT_PARAMS})
    return arrays, meta


def _restore_optimizer(path, meta, arrays):
    """The ``_partial`` dict of a SoftmaxRegression from its stored optimiser state."""
    def bad(msg):
        return ModelFileError(f"{path!r} is inconsistent: partial_fit optimiser state: {msg}.")

    om = meta.get("optimizer")
    if not isinstance(om, dict) or om.get("kind") != "Adam":
        raise bad("unknown or missing 'optimizer' metadata")
    x = arrays.get(_OPT_ARRAYS["x"])
    key = arrays.get(_OPT_ARRAYS["rng_key"])
    m, v = arrays.get(_OPT_ARRAYS["m"]), arrays.get(_OPT_ARRAYS["v"])
    rng_meta = om.get("rng")
    if x is None or x.ndim != 1 or x.dtype != np.float64:
        raise bad("no 1-D float64 coefficient vector")
    if (m is None) != (v is None) or (m is not None and not (m.shape == v.shape == x.shape)):
        raise bad("the moment vectors do not match the coefficients")
    if key is None or key.shape != (624,) or key.dtype != np.uint32 or not isinstance(
            rng_meta, dict):
        raise bad("bad random state")
    try:
        solvers = import_module("softmaxkit.solvers")
        opt = solvers.Adam(**{k: float(om[k]) for k in _OPT_PARAMS}, method=str(om["method"]))
        opt.t, opt.m, opt.v = int(om["t"]), m, v
        rng = np.random.RandomState()
        rng.set_state(("MT19937", key, int(rng_meta["pos"]), int(rng_meta["has_gauss"]),
                       float(rng_meta["cached_gaussian"])))
        passes = int(om["passes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from None
    return {"opt": opt, "x": x.copy(), "rng": rng, "passes": passes}


# ---------------------------------------------------------------------- save
def save_model(model, path, *, temperature=None, metadata=None):
    """Save a fitted estimator to a model file (atomically, without pickle).

    Parameters
    ----------
    model : SoftmaxRegression, OneVsRestLogistic or TemperatureScaler
        A fitted softmaxkit estimator.  Other classes are refused.
    path : str or os.PathLike
        Destination (the CLI uses the ``.skm`` extension).  Written to a
        temporary file in the same directory and renamed into place, so a
        failure never leaves a partial file.
    temperature : float, optional
        A temperature fitted by temperature scaling (``TemperatureScaler``)
        for this model; stored so that calibrated probabilities are
        ``softmax(decision_function(X) / temperature)``.  Only for a
        SoftmaxRegression: refused for a OneVsRestLogistic (independent
        per-label sigmoids, no softmax) and for a TemperatureScaler (it
        carries its own ``temperature_``).
    metadata : dict, optional
        JSON-serialisable extra information (training summary, feature dtypes,
        ...), stored verbatim under the ``"metadata"`` key.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    ModelFileError
        The model is not a (fitted) softmaxkit estimator, holds something
        the format cannot store exactly (e.g. a string label or feature name
        ending with a NUL character, which fixed-width unicode would drop), or
        ``temperature`` is given for a model other than a SoftmaxRegression
        or is not a finite float > 0.
    OSError
        The destination cannot be written (``FileNotFoundError`` when its
        directory does not exist; the error names ``path``).

    Notes
    -----
    The file is a zip container with two members, ``metadata.json`` and
    ``arrays.npz``; see :mod:`softmaxkit.io` for every field.

    A SoftmaxRegression trained with ``partial_fit`` is saved with its
    optimiser state (Adam's moments and step count, the coefficient vector
    and the minibatch shuffling state), as arrays, never a pickle: a further
    ``partial_fit`` on the loaded model gives exactly what it would have
    given on the saved one.  A model from ``fit`` has no such state.  Integrity is
    checked on load with two SHA-256 digests, one over the arrays (name,
    dtype, shape and bytes of each, in name order) and one over the canonical
    JSON of the metadata.

    Examples
    --------
    >>> import os, tempfile
    >>> from softmaxkit.io import save_model, load_model
    >>> from softmaxkit.models import TemperatureScaler
    >>> ts = TemperatureScaler()
    >>> ts.temperature_, ts.n_classes_ = 1.5, 3   # as if fitted
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(ts, os.path.join(d, "t.skm"))
    ...     load_model(p).temperature_
    1.5
    """
    name, spec = _estimator_name(model)
    if name == "TemperatureScaler" and hasattr(model, "estimator_"):
        raise ModelFileError(
            "this TemperatureScaler wraps a fitted estimator (fit_estimator); save the "
            "estimator with its temperature instead: "
            "save_model(scaler.estimator_, path, temperature=scaler.temperature_)."
        )
    missing = [a for a in spec["required"] if not hasattr(model, a)]
    if missing:
        raise ModelFileError(
            f"cannot save {name}: it is not fitted (missing {', '.join(missing)})."
        )
    if temperature is not None and name != "SoftmaxRegression":
        if name == "TemperatureScaler":
            raise ModelFileError(
                f"a TemperatureScaler carries its own temperature_ ({model.temperature_!r}); "
                "save it without temperature=, or save the model it calibrates with "
                "save_model(model, path, temperature=scaler.temperature_)."
            )
        raise ModelFileError(
            f"temperature means softmax(decision_function(X) / temperature), which does not "
            f"apply to a {name}: its labels are independent per-label sigmoids, not one "
            "softmax. Save it without temperature=."
        )
    if temperature is not None:
        t = float(temperature)
        if not (math.isfinite(t) and t > 0):
            raise ModelFileError(f"temperature must be a finite float > 0; got {temperature!r}.")
        temperature = t

    arrays, manifest = {}, {}
    for attr in spec["required"] + spec["optional"]:
        if not hasattr(model, attr) or getattr(model, attr) is None:
            continue
        arr, kind = _to_saveable(attr, getattr(model, attr))
        arrays[attr] = arr
        manifest[attr] = {"kind": kind, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    opt_arrays, opt_meta = _optimizer_state(name, model)
    for key, arr in (opt_arrays or {}).items():
        arrays[key] = arr
        manifest[key] = {"kind": "optimizer", "dtype": arr.dtype.str, "shape": list(arr.shape)}

    params = {k: _encode_param(k, v) for k, v in model.get_params(deep=False).items()}
    from .. import __version__

    classes = arrays.get("classes_")
    names = arrays.get("feature_names_in_")
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "softmaxkit_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "estimator": name,
        "params": params,
        "classes": None if classes is None else classes.tolist(),
        "n_features": None if "n_features_in_" not in arrays
        else int(arrays["n_features_in_"]),
        "feature_names": None if names is None else names.tolist(),
        "coef_dtype": arrays["coef_"].dtype.name if "coef_" in arrays else None,
        "temperature": temperature,
        "metadata": {} if metadata is None else metadata,
        "arrays": manifest,
        **({} if opt_meta is None else {"optimizer": opt_meta}),
        "arrays_sha256": _arrays_sha256(arrays),
    }
    try:
        meta["metadata_sha256"] = _metadata_sha256(meta)
        meta_bytes = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False,
                                default=_json_value).encode()
        # re-hash what will actually be read back (default= may have converted values)
        meta = json.loads(meta_bytes)
        meta["metadata_sha256"] = _metadata_sha256(meta)
        meta_bytes = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"metadata is not JSON-serialisable: {exc}") from None

    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_META, meta_bytes)
            zf.writestr(_ARRAYS, buf.getvalue())
    return path


# ---------------------------------------------------------------------- load
def _read_container(path):
    """Return (metadata dict, npz bytes) after the format and version checks."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist.")
    if os.path.isdir(path):
        raise ModelFileError(f"model file {path!r} is a directory.")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04":
        if head == b"":
            what = "the file is empty"
        elif head == b"PK\x05\x06":  # a zip's end record first: a zip with no members
            what = "an empty zip container"
        else:
            what = "not a zip container"
        raise ModelFileError(f"{path!r} is not a softmaxkit model file ({what}).")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if _META not in names:
                raise ModelFileError(
                    f"{path!r} is not a softmaxkit model file (no {_META} in the container)."
                )
            if zf.getinfo(_META).file_size > _MAX_META_BYTES:
                raise ModelFileError(f"{path!r}: {_META} is implausibly large.")
            raw_meta = zf.read(_META)
            try:
                meta = json.loads(raw_meta)
            except ValueError:
                raise ModelFileError(
                    f"{path!r} is corrupted: {_META} is not valid JSON."
                ) from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise ModelFileError(
                    f"{path!r} is not a softmaxkit model file (format is not {FORMAT_NAME!r})."
                )
            version = meta.get("format_version")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise ModelFileError(f"{path!r} has an invalid format_version {version!r}.")
            if version > FORMAT_VERSION:
                from .. import __version__

                raise ModelFileError(
                    f"{path!r} uses model format version {version} (written by softmaxkit "
                    f"{meta.get('softmaxkit_version', '?')}); this softmaxkit {__version__} "
                    f"reads up to version {FORMAT_VERSION}. Upgrade softmaxkit to load it."
                )
            if _ARRAYS not in names:
                raise ModelFileError(f"{path!r} is corrupted: no {_ARRAYS} in the container.")
            npz = zf.read(_ARRAYS)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(
            f"{path!r} is truncated or corrupted (bad zip container: {exc})."
        ) from None
    except (EOFError, zlib.error) as exc:
        raise ModelFileError(f"{path!r} is truncated or corrupted ({exc}).") from None
    return path, meta, npz


def _check_metadata(path, meta):
    if meta.get("metadata_sha256") != _metadata_sha256(meta):
        raise ModelFileError(
            f"{path!r} failed its integrity check: the metadata SHA-256 does not match "
            "(the file was modified or corrupted)."
        )
    name = meta.get("estimator")
    if name not in _ESTIMATORS:
        raise ModelFileError(
            f"{path!r} names an unknown estimator {name!r}; model files hold only "
            f"{', '.join(_ESTIMATORS)}."
        )


def _read_arrays(path, meta, npz):
    manifest = meta.get("arrays")
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{path!r} is corrupted: no array manifest.")
    try:
        with np.load(_io.BytesIO(npz), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path!r}: cannot read {_ARRAYS} ({exc}).") from None
    if set(arrays) != set(manifest):
        raise ModelFileError(
            f"{path!r} is corrupted: the arrays {sorted(arrays)} do not match the manifest "
            f"{sorted(manifest)}."
        )
    if _arrays_sha256(arrays) != meta.get("arrays_sha256"):
        raise ModelFileError(
            f"{path!r} failed its integrity check: the arrays' SHA-256 does not match "
            "(the file was modified or corrupted)."
        )
    return arrays


def _check_consistency(path, name, state):
    def bad(msg):
        return ModelFileError(f"{path!r} is inconsistent: {msg}.")

    if name == "TemperatureScaler":
        t = state["temperature_"]
        if not (isinstance(t, float) and math.isfinite(t) and t > 0):
            raise bad(f"temperature_ must be a finite float > 0, got {t!r}")
        return
    coef, b, classes = state["coef_"], state["intercept_"], state["classes_"]
    d = state["n_features_in_"]
    if coef.ndim != 2 or b.shape != (coef.shape[0],) or classes.ndim != 1:
        raise bad(f"coef_ {coef.shape}, intercept_ {b.shape}, classes_ {classes.shape}")
    if not isinstance(d, int) or coef.shape[1] != d:
        raise bad(f"coef_ has {coef.shape[1]} columns but n_features_in_ is {d!r}")
    names = state.get("feature_names_in_")
    if names is not None and names.shape != (d,):
        raise bad(f"{names.shape[0]} feature names for {d} features")


def _read_model(path):
    path, meta, npz = _read_container(path)
    _check_metadata(path, meta)
    arrays = _read_arrays(path, meta, npz)
    name = meta["estimator"]
    spec = _ESTIMATORS[name]
    missing = [a for a in spec["required"] if a not in arrays]
    if missing:
        raise ModelFileError(
            f"{path!r} is corrupted: fitted attributes missing: {', '.join(missing)}."
        )
    kinds = {k: meta["arrays"][k].get("kind", "array") for k in arrays}
    state = {k: _from_saved(arrays[k], kinds[k]) for k in arrays if kinds[k] != "optimizer"}
    _check_consistency(path, name, state)
    partial = None
    if name == "SoftmaxRegression" and ("optimizer" in meta or "optimizer" in kinds.values()):
        partial = _restore_optimizer(
            path, meta, {k: a for k, a in arrays.items() if kinds[k] == "optimizer"})
    try:
        params = {k: _decode_param(v) for k, v in meta.get("params", {}).items()}
    except ValueError as exc:
        raise ModelFileError(f"{path!r} is corrupted: bad parameter encoding ({exc}).") from None
    cls = getattr(import_module(spec["module"]), name)
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ModelFileError(
            f"{path!r}: its {name} parameters do not fit this softmaxkit version ({exc})."
        ) from None
    for k, v in state.items():
        setattr(model, k, v)
    if partial is not None:
        model._partial = partial
    return model, meta


def load_model(path, *, return_metadata=False):
    """Load an estimator from a model file written by :func:`save_model`.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    return_metadata : bool, default False
        Also return the file's metadata dictionary (format fields, parameters,
        ``temperature``, the user ``metadata`` section, ...).

    Returns
    -------
    model : SoftmaxRegression, OneVsRestLogistic or TemperatureScaler
        The estimator, rebuilt from its parameters and fitted arrays; it
        predicts exactly as the saved one did.
    metadata : dict
        Only when ``return_metadata`` is true.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ModelFileError
        The file is not a softmaxkit model file (foreign), is truncated or
        corrupted, fails its SHA-256 integrity check (tampered), was written
        in a newer format version, or names an estimator outside the
        whitelist.  Nothing is ever unpickled and no class named by the file
        is imported.

    Examples
    --------
    >>> import os, tempfile
    >>> from softmaxkit.io import save_model, load_model
    >>> from softmaxkit.models import TemperatureScaler
    >>> ts = TemperatureScaler()
    >>> ts.temperature_, ts.n_classes_ = 2.0, 4
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(ts, os.path.join(d, "t.skm"), metadata={"note": "demo"})
    ...     model, meta = load_model(p, return_metadata=True)
    >>> model.n_classes_, meta["format_version"], meta["metadata"]["note"]
    (4, 1, 'demo')
    """
    model, meta = _read_model(path)
    return (model, meta) if return_metadata else model
