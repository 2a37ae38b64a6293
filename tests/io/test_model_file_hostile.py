"""Hostile model files: forged (re-signed) and corrupted files are refused with a
one-line ModelFileError naming the file, before anything large is allocated, and
never load as a model that predicts something wrong."""

import copy
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

import softmaxkit
from softmaxkit.io import ModelFileError, load_model, save_model
from softmaxkit.io import _model_file as mf


# ------------------------------------------------------------------ forging
def _parts(path):
    """(metadata, arrays) of a model file."""
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    return meta, arrays


def _forge(path, meta, arrays, *, edit=None, npz=None, meta_bytes=None, savez=np.savez):
    """Write a model file as a forger would: the manifest rebuilt from ``arrays``
    (keeping each array's kind), ``edit(meta)`` applied, and both SHA-256 digests
    recomputed, so that only the loader's own checks can refuse it."""
    meta = copy.deepcopy(meta)
    old = meta.get("arrays", {})
    meta["arrays"] = {k: {"kind": old.get(k, {}).get("kind", "array"), "dtype": a.dtype.str,
                          "shape": list(a.shape)} for k, a in arrays.items()}
    if edit is not None:
        edit(meta)
    meta["arrays_sha256"] = mf._arrays_sha256(arrays)
    meta["metadata_sha256"] = mf._metadata_sha256(meta)
    if npz is None:
        buf = io.BytesIO()
        savez(buf, **arrays)
        npz = buf.getvalue()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta) if meta_bytes is None else meta_bytes)
        zf.writestr("arrays.npz", npz)
    return path


def _refused(path, match=None):
    """load_model(path) raises a one-line ModelFileError naming the file."""
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.argmax(X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(90, 3)), axis=1)
    return X, y


@pytest.fixture(scope="module")
def good(tmp_path_factory, data):
    """(metadata, arrays) of a 3-class SoftmaxRegression file."""
    X, y = data
    p = tmp_path_factory.mktemp("good") / "m.skm"
    return _parts(save_model(softmaxkit.SoftmaxRegression().fit(X, y), p))


@pytest.fixture(scope="module")
def good_ts(tmp_path_factory):
    ts = softmaxkit.TemperatureScaler()
    ts.temperature_, ts.n_classes_, ts.n_iter_ = 1.5, 3, 4
    return _parts(save_model(ts, tmp_path_factory.mktemp("ts") / "t.skm"))


def test_forge_helper_writes_a_loadable_file(tmp_path, good, good_ts):
    # the forgeries below differ from a good file only in what each test changes
    assert load_model(_forge(tmp_path / "m.skm", *good)).coef_.shape == (3, 3)
    assert load_model(_forge(tmp_path / "t.skm", *good_ts)).temperature_ == 1.5


# ------------------------------------------------- sizes checked before reading
def test_doubly_compressed_arrays_are_refused(tmp_path, good):
    # np.savez_compressed inside the DEFLATEd container: a file of a few KB would
    # expand to 16 MB (a few hundred MB just as easily); the sizes the manifest
    # declares are checked against the container before anything is expanded
    meta, arrays = good
    big = dict(arrays, loss_curve_=np.zeros(2_000_000))
    p = _forge(tmp_path / "m.skm", meta, big, savez=np.savez_compressed)
    assert p.stat().st_size < 100_000
    _refused(p, r"arrays\.npz is \d+ bytes, but its manifest declares 16000\d\d\d bytes")
    # save_model stores the arrays uncompressed: a compressed .npy member is refused
    p = _forge(tmp_path / "small.skm", meta, arrays, savez=np.savez_compressed)
    _refused(p, r"cannot read arrays\.npz \('\w+' is compressed")


def _npy_claiming(shape, data):
    """A .npy member whose header declares ``shape`` (float64) but holds ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def _npz_with(arrays, name, member):
    buf = io.BytesIO()
    np.savez(buf, **{k: a for k, a in arrays.items() if k != name})
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(name + ".npy", member)
    return buf.getvalue()


@pytest.mark.parametrize("declared", ["manifest", "header only"])
def test_npy_header_declaring_more_than_its_data_is_refused(tmp_path, good, declared):
    # a header of shape (10**13,) with 16 bytes of data made numpy try to allocate
    # 72.8 TiB (MemoryError); the declared size is checked first
    meta, arrays = good
    npz = _npz_with(arrays, "loss_curve_", _npy_claiming((10**13,), b"\0" * 16))

    def edit(m):
        if declared == "manifest":
            m["arrays"]["loss_curve_"]["shape"] = [10**13]

    p = _forge(tmp_path / "m.skm", meta, arrays, edit=edit, npz=npz)
    _refused(p, "implausibly large" if declared == "manifest" else "'loss_curve_'")


def test_arrays_larger_than_the_manifest_are_refused(tmp_path, good):
    # the manifest is signed: arrays.npz may not hold more than it declares
    meta, arrays = good
    big = dict(arrays, loss_curve_=np.zeros(1_000_000))

    def edit(m):
        m["arrays"]["loss_curve_"]["shape"] = list(arrays["loss_curve_"].shape)

    p = _forge(tmp_path / "m.skm", meta, big, edit=edit)
    _refused(p, r"arrays\.npz")


def test_array_size_cap_applies_to_save_and_load(tmp_path, good, monkeypatch):
    meta, arrays = good
    p = _forge(tmp_path / "m.skm", meta, arrays)
    model = load_model(p)
    monkeypatch.setattr(mf, "_MAX_ARRAYS_BYTES", 64)
    _refused(p, "implausibly large")
    with pytest.raises(ModelFileError, match="more than a model file may hold"):
        save_model(model, tmp_path / "new.skm")
    assert not (tmp_path / "new.skm").exists()


# --------------------------------------------------- inconsistent fitted state
def _replace(**new):
    def change(arrays):
        return {**arrays, **new}
    return change


def _coef(fn):
    def change(arrays):
        return {**arrays, "coef_": fn(arrays["coef_"].copy())}
    return change


def _set(a, idx, v):
    a[idx] = v
    return a


@pytest.mark.parametrize("change, match", [
    (_replace(classes_=np.array([0, 1])), "classes_"),          # 2 labels, 3 coef rows
    (_replace(classes_=np.arange(5)), "classes_"),               # 5 labels, 3 coef rows
    (_replace(classes_=np.array([0, 0, 1])), "classes_ .*unique"),
    (_replace(classes_=np.arange(3).reshape(3, 1)), "classes_"),
    (_coef(lambda c: _set(c, (0, 0), np.nan)), "coef_ .*finite"),
    (_replace(intercept_=np.full(3, np.inf)), "intercept_ .*finite"),
    (_coef(lambda c: c.astype("U8")), "coef_"),
    (_coef(lambda c: c.astype(np.complex128)), "coef_"),
    (_coef(lambda c: c.astype(np.int64)), "coef_"),
    (_coef(lambda c: c[:, :2]), "n_features_in_"),
    (_replace(n_features_in_=np.asarray(-1)), "n_features_in_"),
    (_replace(loss_curve_=np.zeros((2, 2))), "loss_curve_"),
    (_replace(feature_names_in_=np.array([1, 2, 3])), "feature_names_in_"),
])
def test_inconsistent_softmax_regression_is_refused(tmp_path, good, data, change, match):
    meta, arrays = good
    p = _forge(tmp_path / "m.skm", meta, change(arrays))
    _refused(p, match)


def test_single_class_softmax_regression_is_refused(tmp_path, good):
    meta, arrays = good
    arrays = dict(arrays, coef_=arrays["coef_"][:1], intercept_=arrays["intercept_"][:1],
                  classes_=arrays["classes_"][:1])
    _refused(_forge(tmp_path / "m.skm", meta, arrays, edit=lambda m: m.update(classes=[0])),
             "at least 2 classes")


def test_inconsistent_one_vs_rest_is_refused(tmp_path, data):
    X, _ = data
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    meta, arrays = _parts(save_model(softmaxkit.OneVsRestLogistic().fit(X, Y),
                                     tmp_path / "o.skm"))
    assert load_model(_forge(tmp_path / "ok.skm", meta, arrays)).coef_.shape == (2, 3)
    _refused(_forge(tmp_path / "a.skm", meta, dict(arrays, n_iter_=np.arange(5))), "n_iter_")
    _refused(_forge(tmp_path / "b.skm", meta, dict(arrays, classes_=np.arange(3)),
                    edit=lambda m: m.update(classes=[0, 1, 2])), "classes_")


@pytest.mark.parametrize("attr, value, match", [
    ("coef_", np.array([[np.nan, 0, 0], [0, 0, 0], [0, 0, 0]]), "coef_ holds non-finite"),
    ("classes_", np.array(["a", "a", "b"], dtype=object), "classes_ are not unique"),
    ("classes_", np.array([0, 1]), "classes_ has shape"),
    ("C", -1.0, "the 'C' parameter"),
])
def test_save_refuses_what_load_would_refuse(tmp_path, data, attr, value, match):
    # save_model runs the same checks, so it never writes a file load_model refuses
    X, y = data
    model = softmaxkit.SoftmaxRegression().fit(X, y)
    setattr(model, attr, value)
    with pytest.raises(ModelFileError, match=f"cannot save this SoftmaxRegression: {match}"):
        save_model(model, tmp_path / "m.skm")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("attr, value, match", [
    ("n_classes_", np.asarray(-5), "n_classes_"),
    ("n_classes_", np.asarray(1), "n_classes_"),
    ("temperature_", np.asarray(np.nan), "temperature_"),
    ("temperature_", np.asarray(-1.0), "temperature_"),
    ("n_iter_", np.asarray(-2), "n_iter_"),
])
def test_inconsistent_temperature_scaler_is_refused(tmp_path, good_ts, attr, value, match):
    meta, arrays = good_ts
    _refused(_forge(tmp_path / "t.skm", meta, dict(arrays, **{attr: value})), match)


@pytest.mark.parametrize("bounds", [[5, 1], [0, 1], "x", [1, 2, 3]])
def test_invalid_parameters_are_refused(tmp_path, good_ts, bounds):
    # the estimator's own parameter validation runs on the restored parameters
    meta, arrays = good_ts

    def edit(m):
        m["params"]["bounds"] = {"$tuple": bounds} if isinstance(bounds, list) else bounds

    _refused(_forge(tmp_path / "t.skm", meta, arrays, edit=edit), "'bounds' parameter")


@pytest.mark.parametrize("param, value", [("C", -1.0), ("penalty", "l3"), ("max_iter", "x")])
def test_invalid_softmax_regression_parameters_are_refused(tmp_path, good, param, value):
    meta, arrays = good
    _refused(_forge(tmp_path / "m.skm", meta, arrays,
                    edit=lambda m: m["params"].update({param: value})), f"'{param}' parameter")


# ------------------------------------------------ malformed metadata and manifest
def _meta_edit(key, value):
    return lambda m: m.update({key: value})


def _manifest_edit(name, field, value):
    def edit(m):
        if field is None:
            m["arrays"][name] = value
        else:
            m["arrays"][name][field] = value
    return edit


@pytest.mark.parametrize("edit, match", [
    (_meta_edit("params", []), "params"),
    (_meta_edit("params", None), "params"),
    (_meta_edit("estimator", ["x"]), "unknown estimator"),
    (_meta_edit("arrays", []), "manifest"),
    (_manifest_edit("coef_", "kind", "int"), "coef_"),
    (_manifest_edit("classes_", "kind", "optimizer"), "classes_"),
    (_manifest_edit("coef_", "kind", "bogus"), "unknown kind 'bogus'"),
    (_manifest_edit("coef_", None, "x"), "coef_"),
    (_manifest_edit("coef_", "shape", "x"), "coef_"),
    (_manifest_edit("coef_", "dtype", "not a dtype"), "coef_"),
    (_manifest_edit("coef_", "dtype", "|O"), "coef_"),
    (_manifest_edit("coef_", "shape", [3, 4]), "coef_"),
    (_meta_edit("optimizer", {"kind": "Adam"}), "optimiser"),
    (lambda m: m["params"].update(class_weight={"$dict": [[{"$dict": []}, 1]]}), "param"),
    (lambda m: m["params"].update(class_weight={"$dict": [[1]]}), "param"),
    (lambda m: m["params"].update(C={"$float": "1e309"}), "param"),
])
def test_malformed_metadata_is_refused(tmp_path, good, edit, match):
    meta, arrays = good
    _refused(_forge(tmp_path / "m.skm", meta, arrays, edit=edit), match)


def test_non_integer_scalar_is_refused(tmp_path, good):
    meta, arrays = good
    _refused(_forge(tmp_path / "m.skm", meta, dict(arrays, n_iter_=np.asarray("x"))),
             "n_iter_")


def test_array_valued_temperature_is_refused(tmp_path, good_ts):
    meta, arrays = good_ts
    _refused(_forge(tmp_path / "t.skm", meta, dict(arrays, temperature_=np.ones(3))),
             "temperature_")


_HEAD = '{"format": "softmaxkit-model", "format_version": 1, "x": '


@pytest.mark.parametrize("raw", [
    pytest.param("[" * 200_000 + "]" * 200_000, id="nested 200,000 deep"),
    pytest.param(_HEAD + "NaN}", id="NaN"),
    pytest.param(_HEAD + "-Infinity}", id="-Infinity"),
    pytest.param(_HEAD + "1e400}", id="1e400"),
    pytest.param(_HEAD + "1" * 5000 + "}", id="5000-digit int"),
    pytest.param(b"\xff\xfe{}", id="not UTF-8"),
])
def test_unparsable_metadata_is_refused(tmp_path, good, raw):
    meta, arrays = good
    _refused(_forge(tmp_path / "m.skm", meta, arrays, meta_bytes=raw), "not valid JSON")


def test_nan_inside_signed_metadata_is_refused(tmp_path, good):
    # a NaN literal, with a digest computed the lax way (allow_nan)
    meta = copy.deepcopy(good[0])
    meta["metadata"] = {"x": float("nan")}
    body = {k: v for k, v in meta.items() if k != "metadata_sha256"}
    meta["metadata_sha256"] = hashlib.sha256(json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()).hexdigest()
    _refused(_forge(tmp_path / "m.skm", *good, meta_bytes=json.dumps(meta)), "not valid JSON")


# ------------------------------------------------------- arrays a model lacks
@pytest.mark.parametrize("name", ["predict", "_partial", "__class__", "__dict__", "extra_"])
def test_arrays_that_are_not_fitted_attributes_are_refused(tmp_path, good, name):
    meta, arrays = good
    p = _forge(tmp_path / "m.skm", meta, dict(arrays, **{name: np.zeros(2)}))
    _refused(p, f"'{name}', which is not a fitted attribute of SoftmaxRegression")


def test_optimizer_arrays_only_for_softmax_regression(tmp_path, data, good_ts):
    meta, arrays = good_ts
    p = _forge(tmp_path / "t.skm", meta, dict(arrays, _optimizer_x=np.zeros(3)),
               edit=_manifest_edit("_optimizer_x", "kind", "optimizer"))
    _refused(p, "'_optimizer_x', which is not a fitted attribute of TemperatureScaler")


# --------------------------------------------- metadata fields the CLI reads
@pytest.mark.parametrize("key, value, match", [
    ("temperature", "x", "temperature"),
    ("temperature", -3, "temperature"),
    ("temperature", 0, "temperature"),
    ("temperature", True, "temperature"),
    ("temperature", [2.0], "temperature"),
    ("feature_names", 5, "feature_names"),
    ("feature_names", ["a", "b", "c"], "feature_names"),  # no feature_names_in_
    ("classes", [0, 1], "classes"),
    ("n_features", 7, "n_features"),
    ("coef_dtype", "int8", "coef_dtype"),
])
def test_metadata_fields_must_agree_with_the_arrays(tmp_path, good, key, value, match):
    meta, arrays = good
    _refused(_forge(tmp_path / "m.skm", meta, arrays, edit=_meta_edit(key, value)), match)


def test_feature_names_must_match_feature_names_in(tmp_path, data):
    pd = pytest.importorskip("pandas")
    X, y = data
    model = softmaxkit.SoftmaxRegression().fit(pd.DataFrame(X, columns=["a", "b", "c"]), y)
    meta, arrays = _parts(save_model(model, tmp_path / "m.skm", temperature=2.0))
    assert load_model(_forge(tmp_path / "ok.skm", meta, arrays)).feature_names_in_.tolist() == [
        "a", "b", "c"]
    _refused(_forge(tmp_path / "r.skm", meta, arrays,
                    edit=_meta_edit("feature_names", ["c", "b", "a"])), "feature_names")


def test_temperature_only_stored_for_softmax_regression(tmp_path, good_ts):
    meta, arrays = good_ts
    _refused(_forge(tmp_path / "t.skm", meta, arrays, edit=_meta_edit("temperature", 2.0)),
             "temperature")


# ----------------------------------------------------------- corrupted bytes
def _only_model_file_errors(path, raw, offsets, masks=(0x01, 0x80, 0xFF)):
    """Flip bytes of ``raw`` at ``offsets``; each result loads or raises ModelFileError."""
    bad = []
    for i in offsets:
        for mask in masks:
            b = bytearray(raw)
            b[i] ^= mask
            path.write_bytes(bytes(b))
            try:
                load_model(path)
            except ModelFileError as exc:
                if "\n" in str(exc):
                    bad.append((i, mask, "multi-line message"))
            except Exception as exc:  # every other failure is collected
                bad.append((i, mask, f"{type(exc).__name__}: {exc}"))
    return bad


def test_corrupted_zip_directory_gives_model_file_errors(tmp_path, good):
    # compression method 99, 'zip file version 19.1', 'strong encryption', a bad
    # offset (OSError EINVAL) ...: zipfile raises NotImplementedError, OSError, ...
    p = _forge(tmp_path / "m.skm", *good)
    raw = p.read_bytes()
    start = raw.find(b"PK\x01\x02")
    bad = _only_model_file_errors(tmp_path / "bad.skm", raw, range(start, len(raw)))
    assert bad == []


def test_random_byte_flips_give_model_file_errors(tmp_path, good):
    p = _forge(tmp_path / "m.skm", *good)
    raw = p.read_bytes()
    offsets = np.random.default_rng(7).choice(len(raw), size=min(300, len(raw)), replace=False)
    assert _only_model_file_errors(tmp_path / "bad.skm", raw, offsets.tolist()) == []
