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
# Plausibility cap on the arrays of one file (uncompressed): save_model refuses a
# model whose arrays take more, and load_model checks the sizes the signed manifest
# declares against it before reading arrays.npz, so that a small hostile file
# cannot make it allocate without bound.
_MAX_ARRAYS_BYTES = 2**31
# allowance per array for its .npy header and its zip entry's headers
_ENTRY_BYTES = 2**14
# manifest kind -> the dtype kinds an array of that kind may have
_KIND_DTYPES = {"array": "biufU", "int": "iu", "float": "f", "bool": "b", "object-str": "U",
                "optimizer": "uf"}

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
        A temperature ``T`` fitted by temperature scaling
        (``TemperatureScaler``) for this model, stored as the ``temperature``
        metadata field.  Only for a SoftmaxRegression: refused for a
        OneVsRestLogistic (independent per-label sigmoids, no softmax) and
        for a TemperatureScaler (it carries its own ``temperature_``).  The
        command line applies it (``softmaxkit predict`` and ``evaluate``);
        the loaded estimator does not: ``load_model(path).predict_proba(X)``
        gives the uncalibrated probabilities.  The calibrated ones, for any
        number of classes, are ``softmaxkit.softmax(model.predict_log_proba(X),
        axis=1, temperature=T)`` (see the example), i.e. ``softmax(Z / T)``
        of the logits ``Z = X W^T + b``: the log-probabilities differ from
        ``Z`` by a per-row constant, which softmax ignores.  Do not use
        ``decision_function`` there: for two classes it is the 1-D margin
        ``z_1 - z_0``, not the logits.
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
        ending with a NUL character, which fixed-width unicode would drop),
        has a fitted state or parameters that :func:`load_model` would refuse
        (e.g. a NaN coefficient, duplicate classes), arrays over the 2 GiB a
        model file may hold, or ``temperature`` is given for a model other
        than a SoftmaxRegression or is not a finite float > 0.
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

    A classifier saved with its temperature; the calibrated probabilities
    (here two classes: the sigmoid of the margin over ``T``):

    >>> import numpy as np
    >>> from softmaxkit import SoftmaxRegression, softmax
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2))
    >>> y = (X[:, 0] + rng.normal(size=50) > 0).astype(int)
    >>> clf = SoftmaxRegression().fit(X, y)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(clf, os.path.join(d, "m.skm"), temperature=2.0)
    ...     model, meta = load_model(p, return_metadata=True)
    >>> T = meta["temperature"]
    >>> calibrated = softmax(model.predict_log_proba(X), axis=1, temperature=T)
    >>> margin = model.decision_function(X)          # 1-D for two classes
    >>> bool(np.allclose(calibrated[:, 1], 1 / (1 + np.exp(-margin / T))))
    True
    >>> bool(np.allclose(model.predict_proba(X), calibrated))  # not applied on load
    False
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
            f"temperature means softmax(logits / temperature), which does not "
            f"apply to a {name}: its labels are independent per-label sigmoids, not one "
            "softmax. Save it without temperature=."
        )
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not (
                math.isfinite(float(temperature)) and float(temperature) > 0):
            raise ModelFileError(f"temperature must be a finite float > 0; got {temperature!r}.")
        temperature = float(temperature)

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

    total = sum(a.nbytes for a in arrays.values())
    if total > _MAX_ARRAYS_BYTES:
        raise ModelFileError(
            f"cannot save this {name}: its arrays take {total} bytes, more than a model file "
            f"may hold ({_MAX_ARRAYS_BYTES} bytes)."
        )

    # what load_model would refuse is refused here, before anything is written
    def bad(msg):
        return ModelFileError(f"cannot save this {name}: {msg}.")

    kinds = {k: v["kind"] for k, v in manifest.items()}
    _check_fitted(bad, name, {k: _from_saved(a, kinds[k]) for k, a in arrays.items()
                              if kinds[k] != "optimizer"})
    _check_params(bad, name, model)

    params = {k: _encode_param(k, v) for k, v in model.get_params(deep=False).items()}
    from .. import __version__

    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "softmaxkit_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "estimator": name,
        "params": params,
        **_readable_copy(arrays),
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


# ------------------------------------------------------------------ consistency
# Run on save (so that save_model never writes a file load_model refuses) and on
# load (so that a forged but re-signed file never becomes a model that predicts
# something wrong).  ``bad(msg)`` builds the error.
def _is_int(v, low):
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _check_fitted(bad, name, state):
    """The fitted attributes agree with each other and hold usable values."""
    if name == "TemperatureScaler":
        t = state["temperature_"]
        if not (isinstance(t, float) and math.isfinite(t) and t > 0):
            raise bad(f"temperature_ must be a finite float > 0, got {t!r}")
        if not _is_int(state["n_classes_"], 2):
            raise bad(f"n_classes_ must be an int >= 2, got {state['n_classes_']!r}")
        if "n_iter_" in state and not _is_int(state["n_iter_"], 0):
            raise bad(f"n_iter_ must be an int >= 0, got {state['n_iter_']!r}")
        for k in ("nll_", "nll_uncalibrated_"):
            if k in state and not isinstance(state[k], float):
                raise bad(f"{k} must be a float, got {state[k]!r}")
        return
    coef, b, classes = state["coef_"], state["intercept_"], state["classes_"]
    for k, a in (("coef_", coef), ("intercept_", b)):
        if not (isinstance(a, np.ndarray) and a.dtype.kind == "f"):
            raise bad(f"{k} must be an array of real floats, got dtype "
                      f"{getattr(a, 'dtype', type(a).__name__)}")
    if coef.ndim != 2:
        raise bad(f"coef_ has shape {coef.shape}, not (n_classes, n_features)")
    k = coef.shape[0]
    if b.shape != (k,):
        raise bad(f"intercept_ has shape {b.shape} for {k} row(s) of coef_")
    if not isinstance(classes, np.ndarray) or classes.shape != (k,):
        raise bad(f"classes_ has shape {np.shape(classes)} for {k} row(s) of coef_")
    if name == "SoftmaxRegression" and k < 2:
        raise bad(f"a SoftmaxRegression has at least 2 classes; coef_ has {k} row(s)")
    values, counts = np.unique(classes, return_counts=True)
    if len(values) != k:
        raise bad(f"classes_ are not unique ({values[counts > 1].tolist()[0]!r} appears "
                  f"{counts.max()} times)")
    for key, a in (("coef_", coef), ("intercept_", b)):
        if not np.all(np.isfinite(a)):
            raise bad(f"{key} holds non-finite values (NaN or inf)")
    d = state["n_features_in_"]
    if not _is_int(d, 1):
        raise bad(f"n_features_in_ must be an int >= 1, got {d!r}")
    if coef.shape[1] != d:
        raise bad(f"coef_ has {coef.shape[1]} columns but n_features_in_ is {d!r}")
    names = state.get("feature_names_in_")
    if names is not None and (names.shape != (d,)
                              or not all(isinstance(v, str) for v in names.tolist())):
        raise bad(f"feature_names_in_ must be {d} strings, got {names.dtype} of shape "
                  f"{names.shape}")
    n_iter = state["n_iter_"]
    if name == "OneVsRestLogistic":
        if not (isinstance(n_iter, np.ndarray) and n_iter.dtype.kind in "iu"
                and n_iter.shape == (k,) and np.all(n_iter >= 0)):
            raise bad(f"n_iter_ must hold {k} ints >= 0 (one per label), got "
                      f"{np.asarray(n_iter).dtype} of shape {np.shape(n_iter)}")
    else:
        if not _is_int(n_iter, 0):
            raise bad(f"n_iter_ must be an int >= 0, got {n_iter!r}")
        curve = state["loss_curve_"]
        if not (isinstance(curve, np.ndarray) and curve.ndim == 1 and curve.dtype.kind == "f"):
            raise bad(f"loss_curve_ must be a 1-D array of floats, got shape "
                      f"{np.shape(curve)}")


def _readable_copy(arrays):
    """The metadata fields that repeat the fitted state (the arrays are authoritative)."""
    classes = arrays.get("classes_")
    names = arrays.get("feature_names_in_")
    return {
        "classes": None if classes is None else classes.tolist(),
        "n_features": None if "n_features_in_" not in arrays
        else int(arrays["n_features_in_"]),
        "feature_names": None if names is None else names.tolist(),
        "coef_dtype": arrays["coef_"].dtype.name if "coef_" in arrays else None,
    }


def _check_meta_fields(bad, name, meta, arrays):
    """The metadata fields the command line reads agree with the arrays."""
    t = meta.get("temperature")
    if t is not None:
        if name != "SoftmaxRegression":
            raise bad(f"a temperature ({t!r}) is stored for a {name}, which has none")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (
                math.isfinite(t) and t > 0):
            raise bad(f"temperature must be a finite number > 0 or null, got {t!r}")
    for key, value in _readable_copy(arrays).items():
        if key in meta and meta[key] != value:
            raise bad(f"its {key!r} ({meta[key]!r}) does not match the arrays ({value!r})")


def _check_params(bad, name, model):
    """The estimator's own parameter validation."""
    try:
        if name == "TemperatureScaler":
            import_module("softmaxkit.models._calibration")._check_bounds(model.bounds)
        else:
            model._check_params()
    except (TypeError, ValueError) as exc:
        msg = str(exc).rstrip(".")
        raise bad(msg[:1].lower() + msg[1:]) from None


# ---------------------------------------------------------------------- load
def _reason(exc):
    """One line about an unexpected exception."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _no_constant(name):
    raise ValueError(f"non-finite number {name}")


def _finite_float(text):
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text[:30]} is out of range")
    return v


def _check_file(path):
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


def _read_metadata(path, zf):
    """The metadata dict, after the format and version checks."""
    if _META not in zf.namelist():
        raise ModelFileError(
            f"{path!r} is not a softmaxkit model file (no {_META} in the container)."
        )
    if zf.getinfo(_META).file_size > _MAX_META_BYTES:
        raise ModelFileError(f"{path!r}: {_META} is implausibly large.")
    raw = zf.read(_META)
    try:
        meta = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(
            f"{path!r} is corrupted: {_META} is not valid JSON ({_reason(exc)})."
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
    return meta


def _check_metadata(path, meta):
    """The metadata digest, the estimator whitelist and the types of the fields read."""
    if meta.get("metadata_sha256") != _metadata_sha256(meta):
        raise ModelFileError(
            f"{path!r} failed its integrity check: the metadata SHA-256 does not match "
            "(the file was modified or corrupted)."
        )
    name = meta.get("estimator")
    if not isinstance(name, str) or name not in _ESTIMATORS:
        raise ModelFileError(
            f"{path!r} names an unknown estimator {name!r}; model files hold only "
            f"{', '.join(_ESTIMATORS)}."
        )
    if not isinstance(meta.get("params", {}), dict):
        raise ModelFileError(f"{path!r} is corrupted: 'params' is not a JSON object.")
    if not isinstance(meta.get("arrays"), dict):
        raise ModelFileError(f"{path!r} is corrupted: no array manifest ('arrays').")
    return name


def _check_manifest(path, name, manifest):
    """{array name: (kind, dtype, shape, nbytes)} from the manifest, checked: only
    arrays the estimator has, known kinds, plain dtypes, and a plausible total size."""
    spec = _ESTIMATORS[name]
    allowed = spec["required"] + spec["optional"]
    if name == "SoftmaxRegression":
        allowed += tuple(_OPT_ARRAYS.values())
    entries = {}
    for key, entry in manifest.items():
        if key not in allowed:
            raise ModelFileError(
                f"{path!r} is inconsistent: it holds an array {key!r}, which is not a fitted "
                f"attribute of {name} (those are {', '.join(allowed)})."
            )

        def bad(msg, key=key):
            return ModelFileError(f"{path!r} is corrupted: the manifest entry of {key!r} {msg}.")

        if not isinstance(entry, dict):
            raise bad(f"is {entry!r}, not a JSON object")
        kind, dtype, shape = entry.get("kind"), entry.get("dtype"), entry.get("shape")
        if not isinstance(kind, str) or kind not in _KIND_DTYPES:
            raise bad(f"has an unknown kind {kind!r}")
        if (kind == "optimizer") != (key in _OPT_ARRAYS.values()):
            raise bad(f"has kind {kind!r}")
        try:
            dt = np.dtype(dtype) if isinstance(dtype, str) else None
        except (TypeError, ValueError, OverflowError):
            dt = None
        if dt is None or dt.kind not in _KIND_DTYPES[kind] or dt.fields or dt.subdtype:
            raise bad(f"has dtype {dtype!r}, which its kind {kind!r} does not allow")
        if not (isinstance(shape, list) and len(shape) <= 2
                and all(_is_int(n, 0) for n in shape)):
            raise bad(f"has an invalid shape {shape!r}")
        if kind in ("int", "float", "bool") and shape:
            raise bad(f"has shape {shape!r}, but its kind {kind!r} is a scalar")
        entries[key] = (kind, dt, tuple(shape), math.prod(shape) * dt.itemsize)
    missing = [a for a in spec["required"] if a not in entries]
    if missing:
        raise ModelFileError(
            f"{path!r} is corrupted: fitted attributes missing: {', '.join(missing)}."
        )
    total = sum(e[3] for e in entries.values())
    if total > _MAX_ARRAYS_BYTES:
        raise ModelFileError(
            f"{path!r}: its manifest declares {total} bytes of arrays, implausibly large "
            f"(a model file holds at most {_MAX_ARRAYS_BYTES}); not reading them."
        )
    return entries


def _read_npy(path, inner, info, kind, dtype, shape, nbytes):
    """One array of arrays.npz, its header checked against the manifest before
    anything the size of its data is allocated."""
    key = info.filename[:-4]

    def bad(msg):
        return ModelFileError(f"{path!r}: cannot read {_ARRAYS} ({key!r} {msg}).")

    if info.compress_type != zipfile.ZIP_STORED:
        raise bad("is compressed; model files store arrays uncompressed, so it is not "
                  "expanded")
    if info.file_size > nbytes + _ENTRY_BYTES:
        raise bad(f"holds {info.file_size} bytes, more than the {nbytes} of its manifest "
                  "entry")
    with inner.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            hshape, fortran, hdtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            hshape, fortran, hdtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise bad(f"has .npy format version {version}")
        if hdtype != dtype or tuple(hshape) != shape:
            raise bad(f"is {hdtype.str} of shape {tuple(hshape)}, but its manifest entry "
                      f"says {dtype.str} of shape {shape}")
        data = fh.read(nbytes + 1)
    if len(data) != nbytes:
        raise bad(f"holds {len(data)} bytes of data for the {nbytes} its shape needs")
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


def _read_arrays(path, meta, entries, npz):
    arrays = {}
    with zipfile.ZipFile(_io.BytesIO(npz)) as inner:
        infos = inner.infolist()
        names = sorted(i.filename[:-4] if i.filename.endswith(".npy") else i.filename
                       for i in infos)
        if names != sorted(entries):
            raise ModelFileError(
                f"{path!r} is corrupted: the arrays {names} do not match the manifest "
                f"{sorted(entries)}."
            )
        for info in infos:
            arrays[info.filename[:-4]] = _read_npy(path, inner, info,
                                                   *entries[info.filename[:-4]])
    if _arrays_sha256(arrays) != meta.get("arrays_sha256"):
        raise ModelFileError(
            f"{path!r} failed its integrity check: the arrays' SHA-256 does not match "
            "(the file was modified or corrupted)."
        )
    return arrays


def _parse_model(path):
    with zipfile.ZipFile(path) as zf:
        meta = _read_metadata(path, zf)
        name = _check_metadata(path, meta)
        entries = _check_manifest(path, name, meta["arrays"])
        if _ARRAYS not in zf.namelist():
            raise ModelFileError(f"{path!r} is corrupted: no {_ARRAYS} in the container.")
        size = zf.getinfo(_ARRAYS).file_size
        declared = sum(e[3] for e in entries.values())
        if not declared <= size <= declared + _ENTRY_BYTES * (len(entries) + 1):
            raise ModelFileError(
                f"{path!r} is corrupted: {_ARRAYS} is {size} bytes, but its manifest "
                f"declares {declared} bytes of arrays."
            )
        npz = zf.read(_ARRAYS)
    arrays = _read_arrays(path, meta, entries, npz)
    del npz

    def bad(msg):
        return ModelFileError(f"{path!r} is inconsistent: {msg}.")

    kinds = {k: e[0] for k, e in entries.items()}
    state = {k: _from_saved(arrays[k], kinds[k]) for k in arrays if kinds[k] != "optimizer"}
    _check_fitted(bad, name, state)
    _check_meta_fields(bad, name, meta, arrays)
    partial = None
    if name == "SoftmaxRegression" and ("optimizer" in meta or "optimizer" in kinds.values()):
        partial = _restore_optimizer(
            path, meta, {k: a for k, a in arrays.items() if kinds[k] == "optimizer"})
    try:
        params = {k: _decode_param(v) for k, v in meta.get("params", {}).items()}
    except (TypeError, ValueError, RecursionError) as exc:
        raise ModelFileError(
            f"{path!r} is corrupted: bad parameter encoding ({_reason(exc)})."
        ) from None
    spec = _ESTIMATORS[name]
    cls = getattr(import_module(spec["module"]), name)
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ModelFileError(
            f"{path!r}: its {name} parameters do not fit this softmaxkit version ({exc})."
        ) from None
    _check_params(bad, name, model)
    for k, v in state.items():
        setattr(model, k, v)
    if partial is not None:
        model._partial = partial
        # the parametrisation the state's vector is in: the saved parameters'
        # (partial_fit compares it with the parameters of its next call)
        model._partial_layout = model._params_layout()
    return model, meta


def _read_model(path):
    path = os.fspath(path)
    _check_file(path)
    # Everything below parses an untrusted file: whatever fails in zipfile, numpy
    # or the checks (NotImplementedError for an unknown compression method,
    # OSError for a bad offset, MemoryError, ...) becomes a ModelFileError.
    try:
        return _parse_model(path)
    except ModelFileError:
        raise
    except MemoryError as exc:
        raise ModelFileError(
            f"{path!r} cannot be loaded: not enough memory ({_reason(exc)})."
        ) from None
    except Exception as exc:
        raise ModelFileError(f"{path!r} is truncated or corrupted ({_reason(exc)}).") from None


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
        in a newer format version, names an estimator outside the whitelist,
        declares implausibly large arrays, or is inconsistent (arrays the
        estimator does not have, shapes that disagree, duplicate classes,
        non-finite coefficients, invalid parameters or temperature).  Every
        failure while reading the file is this error, with a one-line message
        naming the file.  Nothing is ever unpickled, no class named by the
        file is imported, and sizes are checked before arrays are read.

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
