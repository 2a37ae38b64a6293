"""Model files: round trips for every estimator; tampered, truncated, foreign
and newer-version files give clear errors; writes are atomic; no pickle."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softmaxkit
from softmaxkit.io import FORMAT_VERSION, ModelFileError, load_model, save_model
from softmaxkit.io._model_file import _metadata_sha256


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    W = rng.normal(size=(3, 4)) * 2
    y = np.argmax(X @ W.T + rng.gumbel(size=(120, 3)), axis=1)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    names = np.array(["ant", "bee", "cicada"])
    return softmaxkit.SoftmaxRegression(C=0.5).fit(X, names[y])


def _assert_same_predictions(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_softmax_regression_round_trip_string_labels(tmp_path, data, fitted):
    X, _ = data
    p = save_model(fitted, tmp_path / "m.skm")
    m = load_model(p)
    assert type(m) is softmaxkit.SoftmaxRegression
    assert m.get_params() == fitted.get_params()
    assert m.classes_.dtype.kind == "U" and m.classes_.tolist() == ["ant", "bee", "cicada"]
    for attr in ("coef_", "intercept_", "loss_curve_"):
        np.testing.assert_array_equal(getattr(m, attr), getattr(fitted, attr))
    assert m.n_iter_ == fitted.n_iter_ and m.n_features_in_ == 4
    _assert_same_predictions(m, fitted, X)


def test_softmax_regression_round_trip_dataframe_and_params(tmp_path, data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=["w", "x", "y", "z"])
    model = softmaxkit.SoftmaxRegression(
        penalty="l2", C=2.0, class_weight={0: 1.0, 1: 2.5, 2: 1.0}
    ).fit(df, y)
    m, meta = load_model(save_model(model, tmp_path / "m.skm", temperature=1.7,
                                    metadata={"note": "x"}), return_metadata=True)
    assert m.get_params()["class_weight"] == {0: 1.0, 1: 2.5, 2: 1.0}  # int keys kept
    assert m.feature_names_in_.tolist() == ["w", "x", "y", "z"]
    assert meta["feature_names"] == ["w", "x", "y", "z"]
    assert meta["temperature"] == 1.7 and meta["metadata"] == {"note": "x"}
    assert meta["classes"] == [0, 1, 2] and meta["estimator"] == "SoftmaxRegression"
    _assert_same_predictions(m, model, df)


@pytest.mark.parametrize("named", [False, True])
def test_one_vs_rest_round_trip(tmp_path, data, named):
    pd = pytest.importorskip("pandas")
    X, _ = data
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 1]).astype(int)
    if named:
        Y = pd.DataFrame(Y, columns=["red", "round", "ripe"])
    model = softmaxkit.OneVsRestLogistic(C=3.0).fit(X, Y)
    m = load_model(save_model(model, tmp_path / "o.skm"))
    assert type(m) is softmaxkit.OneVsRestLogistic
    assert m.get_params() == model.get_params()
    np.testing.assert_array_equal(m.n_iter_, model.n_iter_)
    np.testing.assert_array_equal(m.classes_, model.classes_)
    assert m.classes_.dtype == model.classes_.dtype  # object array of names comes back as such
    _assert_same_predictions(m, model, X)


def test_temperature_scaler_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 4))
    y = np.argmax(z + rng.gumbel(size=z.shape), axis=1)  # y ~ softmax(z)
    ts = softmaxkit.TemperatureScaler(bounds=(0.05, 50.0)).fit(3 * z, y)
    m = load_model(save_model(ts, tmp_path / "t.skm"))
    assert m.temperature_ == ts.temperature_ and m.n_classes_ == 4
    # every fitted attribute the class documents comes back
    assert m.n_iter_ == ts.n_iter_
    assert m.nll_ == ts.nll_ and m.nll_uncalibrated_ == ts.nll_uncalibrated_
    assert type(m.nll_) is float and type(m.nll_uncalibrated_) is float
    assert m.bounds == (0.05, 50.0) and isinstance(m.bounds, tuple)
    np.testing.assert_array_equal(m.predict_proba(z), ts.predict_proba(z))


def test_parameter_encoding_round_trip():
    from softmaxkit.io._model_file import _decode_param, _encode_param

    value = {"a": (1, float("inf"), -float("inf")), 3: [None, True, "s", np.float32(0.5)],
             (1, 2): {"nested": (np.int64(7),)}}
    enc = _encode_param("p", value)
    back = _decode_param(json.loads(json.dumps(enc, allow_nan=False)))
    assert back == {"a": (1, float("inf"), -float("inf")), 3: [None, True, "s", 0.5],
                    (1, 2): {"nested": (7,)}}
    assert isinstance(back[3][1], bool) and isinstance(back["a"], tuple)
    with pytest.raises(ModelFileError, match="cannot save parameter 'p' of type ndarray"):
        _encode_param("p", np.zeros(2))


def test_scaler_wrapping_an_estimator_is_refused(tmp_path, data, fitted):
    X, y = data
    names = np.array(["ant", "bee", "cicada"])
    ts = softmaxkit.TemperatureScaler().fit_estimator(fitted, X, names[y])
    with pytest.raises(ModelFileError, match=r"save_model\(scaler.estimator_"):
        save_model(ts, tmp_path / "t.skm")
    assert not os.listdir(tmp_path)


def test_refuses_foreign_and_unfitted_estimators(tmp_path):
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ModelFileError, match="model files hold only"):
        save_model(LogisticRegression(), tmp_path / "m.skm")
    with pytest.raises(ModelFileError, match="not fitted"):
        save_model(softmaxkit.SoftmaxRegression(), tmp_path / "m.skm")
    assert not os.listdir(tmp_path)


def test_metadata_must_be_json(tmp_path, fitted):
    with pytest.raises(ModelFileError, match="not JSON-serialisable"):
        save_model(fitted, tmp_path / "m.skm", metadata={"x": object()})
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------- bad files
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("metadata.json")), zf.read("arrays.npz")


def _rewrite(path, meta, npz, *, rehash=True):
    if rehash:
        meta["metadata_sha256"] = _metadata_sha256(meta)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("arrays.npz", npz)


def test_tampered_arrays(tmp_path, fitted):
    p = save_model(fitted, tmp_path / "m.skm")
    meta, npz = _members(p)
    with np.load(io.BytesIO(npz)) as d:
        arrays = {k: d[k] for k in d.files}
    arrays["coef_"][0, 0] += 1e-12
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _rewrite(p, meta, buf.getvalue())
    with pytest.raises(ModelFileError, match="integrity check: the arrays' SHA-256"):
        load_model(p)


def test_tampered_metadata(tmp_path, fitted):
    p = save_model(fitted, tmp_path / "m.skm")
    meta, npz = _members(p)
    meta["params"]["C"] = 100.0
    _rewrite(p, meta, npz, rehash=False)
    with pytest.raises(ModelFileError, match="integrity check: the metadata SHA-256"):
        load_model(p)


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated(tmp_path, fitted, keep):
    p = save_model(fitted, tmp_path / "m.skm")
    raw = open(p, "rb").read()
    open(p, "wb").write(raw[: int(len(raw) * keep)])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        load_model(p)


def test_foreign_files(tmp_path, fitted):
    cases = {
        "text.skm": b"hello, I am a CSV\n1,2,3\n",
        "empty.skm": b"",
        "pickle.skm": pickle.dumps(fitted),
    }
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
    np.savez(tmp_path / "arrays.npz", a=np.arange(3))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("metadata.json", json.dumps({"format": "something-else"}))
    for name in [*cases, "arrays.npz", "other.zip"]:
        with pytest.raises(ModelFileError, match="not a softmaxkit model file"):
            load_model(tmp_path / name)


def test_newer_version(tmp_path, fitted):
    p = save_model(fitted, tmp_path / "m.skm")
    meta, npz = _members(p)
    meta["format_version"] = FORMAT_VERSION + 1
    meta["softmaxkit_version"] = "9.0"
    _rewrite(p, meta, npz)
    with pytest.raises(ModelFileError,
                       match=rf"format version {FORMAT_VERSION + 1} .*softmaxkit 9.0.*Upgrade"):
        load_model(p)


def test_unknown_estimator_is_not_imported(tmp_path, fitted):
    p = save_model(fitted, tmp_path / "m.skm")
    meta, npz = _members(p)
    meta["estimator"] = "sklearn.linear_model.LogisticRegression"
    _rewrite(p, meta, npz)
    with pytest.raises(ModelFileError, match="unknown estimator"):
        load_model(p)


_UNPICKLED = []


class _Boom:
    def __reduce__(self):
        return (_UNPICKLED.append, ("ran",))


def test_object_arrays_are_never_unpickled(tmp_path, fitted):
    p = save_model(fitted, tmp_path / "m.skm")
    meta, npz = _members(p)
    with np.load(io.BytesIO(npz)) as d:
        arrays = {k: d[k] for k in d.files}
    arrays["classes_"] = np.array([_Boom(), _Boom(), _Boom()], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # writes a pickle inside the .npy
    _rewrite(p, meta, buf.getvalue())
    with pytest.raises(ModelFileError, match="cannot read arrays.npz"):
        load_model(p)
    assert _UNPICKLED == []


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope.skm")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, fitted, monkeypatch):
    p = save_model(fitted, tmp_path / "m.skm")
    before = open(p, "rb").read()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail)
    with pytest.raises(OSError, match="disk full"):
        save_model(fitted, p)
    assert open(p, "rb").read() == before
    assert os.listdir(tmp_path) == ["m.skm"]  # no temporary file left


def test_file_permissions_follow_umask(tmp_path, fitted):
    old = os.umask(0o022)
    try:
        p = save_model(fitted, tmp_path / "m.skm")
    finally:
        os.umask(old)
    assert os.stat(p).st_mode & 0o777 == 0o644


def test_layout_is_documented_zip(tmp_path, fitted):
    p = save_model(fitted, tmp_path / "m.skm")
    with zipfile.ZipFile(p) as zf:
        assert zf.namelist() == ["metadata.json", "arrays.npz"]
        meta = json.loads(zf.read("metadata.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as d:
            assert set(d.files) == set(meta["arrays"])
    assert meta["format"] == "softmaxkit-model" and meta["format_version"] == 1
    assert meta["softmaxkit_version"] == softmaxkit.__version__
    assert meta["classes"] == ["ant", "bee", "cicada"]


# ------------------------------------------------------------- properties

_labels = st.one_of(
    st.lists(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]),
                     min_size=1, max_size=8), min_size=2, max_size=6, unique=True),
    st.lists(st.integers(-(2**62), 2**62), min_size=2, max_size=6, unique=True),
)


@given(labels=_labels, d=st.integers(1, 5), data=st.data(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_round_trip_property(tmp_path_factory, labels, d, data, dtype):
    """Any fitted state (unicode or integer labels, float32/64 weights) comes back
    bit-identical, and the rebuilt model predicts exactly as the original."""
    k = len(labels)
    finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    model = softmaxkit.SoftmaxRegression()
    model.coef_ = data.draw(hnp.arrays(dtype, (k, d), elements=finite))
    model.intercept_ = data.draw(hnp.arrays(dtype, (k,), elements=finite))
    model.classes_ = np.array(sorted(labels))
    model.n_features_in_ = d
    model.n_iter_ = data.draw(st.integers(0, 10**6))
    model.loss_curve_ = data.draw(hnp.arrays(np.float64, st.integers(0, 5), elements=finite))
    p = save_model(model, tmp_path_factory.mktemp("prop") / "m.skm")
    m = load_model(p)
    for attr in ("coef_", "intercept_", "classes_", "loss_curve_"):
        a, b = getattr(m, attr), getattr(model, attr)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert (m.n_iter_, m.n_features_in_) == (model.n_iter_, d)
    X = np.linspace(-1, 1, 3 * d).reshape(3, d).astype(dtype)
    np.testing.assert_array_equal(m.predict(X), model.predict(X))


# ------------------------------------------------------- lossless or refused
def test_missing_directory_names_the_users_path(tmp_path, fitted):
    target = tmp_path / "nodir" / "x.skm"
    with pytest.raises(FileNotFoundError) as info:
        save_model(fitted, target)
    msg = str(info.value)
    assert info.value.filename == str(target)
    assert ".tmp" not in msg and "does not exist" in msg and "nodir" in msg
    assert os.listdir(tmp_path) == []


def test_empty_zip_is_named_as_such(tmp_path):
    p = tmp_path / "empty_zip.skm"
    with zipfile.ZipFile(p, "w"):
        pass
    with pytest.raises(ModelFileError, match=r"not a softmaxkit model file \(an empty zip"):
        load_model(p)


@pytest.mark.parametrize("labels", [["a", "a\x00", "b"], ["x\x00\x00", "y"]])
def test_labels_with_trailing_nul_are_refused(tmp_path, data, labels):
    # fixed-width unicode drops trailing NULs: 'a\x00' would load as a second 'a'
    X, y = data
    y = np.array(labels, dtype=object)[y % len(labels)]
    model = softmaxkit.SoftmaxRegression().fit(X, y)
    assert model.classes_.dtype == object
    with pytest.raises(ModelFileError, match=r"'classes_'.*ends with a NUL"):
        save_model(model, tmp_path / "m.skm")
    assert os.listdir(tmp_path) == []


def test_inner_nul_in_labels_round_trips(tmp_path, data):
    X, y = data
    labels = np.array(["a\x00b", "a", "\x00c"], dtype=object)
    model = softmaxkit.SoftmaxRegression().fit(X, labels[y])
    m = load_model(save_model(model, tmp_path / "m.skm"))
    assert m.classes_.tolist() == model.classes_.tolist()
    np.testing.assert_array_equal(m.predict(X), model.predict(X))


def test_feature_names_with_trailing_nul_are_refused(tmp_path, data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=["w", "w\x00", "x", "z"])
    model = softmaxkit.SoftmaxRegression().fit(df, y)
    with pytest.raises(ModelFileError, match=r"'feature_names_in_'.*ends with a NUL"):
        save_model(model, tmp_path / "m.skm")


# ------------------------------------------------- partial_fit optimiser state
@pytest.mark.parametrize("penalty, random_state", [("l2", 0), (None, 3), ("l1", None)])
def test_partial_fit_continues_after_load_as_in_memory(tmp_path, data, penalty,
                                                       random_state):
    """Adam's moments, step count, coefficients and shuffling state are stored:
    a loaded model's next partial_fit equals the in-memory model's."""
    X, y = data
    a = softmaxkit.SoftmaxRegression(penalty=penalty, random_state=random_state)
    a.partial_fit(X, y, classes=[0, 1, 2])
    a.partial_fit(X[:50], y[:50])
    b = load_model(save_model(a, tmp_path / "m.skm"))
    for _ in range(2):
        a.partial_fit(X, y)
        b.partial_fit(X, y)
    np.testing.assert_array_equal(b.coef_, a.coef_)
    np.testing.assert_array_equal(b.intercept_, a.intercept_)
    np.testing.assert_array_equal(b.loss_curve_, a.loss_curve_)
    assert b.n_iter_ == a.n_iter_ == 4

    # the state matters: restarting the optimiser gives another model
    c = load_model(tmp_path / "m.skm")
    c._partial = None
    c.partial_fit(X, y)
    c.partial_fit(X, y)
    assert not np.array_equal(c.coef_, a.coef_)


def test_optimizer_state_layout(tmp_path, data, fitted):
    X, y = data
    a = softmaxkit.SoftmaxRegression(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    meta, npz = _members(save_model(a, tmp_path / "p.skm"))
    opt = meta["optimizer"]
    assert opt["kind"] == "Adam" and opt["t"] == a._partial["opt"].t > 0
    assert opt["passes"] == 1 and opt["rng"]["bit_generator"] == "MT19937"
    kinds = {k: v["kind"] for k, v in meta["arrays"].items()}
    assert {k for k, v in kinds.items() if v == "optimizer"} == {
        "_optimizer_x", "_optimizer_m", "_optimizer_v", "_optimizer_rng_key"}
    with np.load(io.BytesIO(npz), allow_pickle=False) as d:
        np.testing.assert_array_equal(d["_optimizer_m"], a._partial["opt"].m)
        assert d["_optimizer_rng_key"].dtype == np.uint32
    # a model from fit() has no optimiser state and stores none
    meta, _ = _members(save_model(fitted, tmp_path / "f.skm"))
    assert "optimizer" not in meta
    assert all(v["kind"] != "optimizer" for v in meta["arrays"].values())
    assert getattr(load_model(tmp_path / "f.skm"), "_partial", None) is None


def test_inconsistent_optimizer_state(tmp_path, data):
    X, y = data
    a = softmaxkit.SoftmaxRegression(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    p = save_model(a, tmp_path / "p.skm")
    meta, npz = _members(p)
    with np.load(io.BytesIO(npz)) as d:
        arrays = {k: d[k] for k in d.files}
    arrays["_optimizer_m"] = arrays["_optimizer_m"][:-1]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    from softmaxkit.io._model_file import _arrays_sha256

    meta["arrays"]["_optimizer_m"]["shape"] = list(arrays["_optimizer_m"].shape)
    meta["arrays_sha256"] = _arrays_sha256(arrays)
    _rewrite(p, meta, buf.getvalue())
    with pytest.raises(ModelFileError, match="inconsistent: partial_fit optimiser state"):
        load_model(p)


def test_unknown_optimizer_state_is_refused(tmp_path, data):
    X, y = data
    a = softmaxkit.SoftmaxRegression(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    a._partial = {"opt": object(), "x": np.zeros(3), "rng": None, "passes": 1}
    with pytest.raises(ModelFileError, match=r"optimiser state has an unknown form"):
        save_model(a, tmp_path / "m.skm")
    assert os.listdir(tmp_path) == []


def test_temperature_only_for_softmax_models(tmp_path, data):
    # temperature means softmax(decision_function(X) / T): meaningless for independent
    # per-label sigmoids, and a TemperatureScaler carries its own temperature_
    X, _ = data
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    ovr = softmaxkit.OneVsRestLogistic().fit(X, Y)
    with pytest.raises(ModelFileError, match="OneVsRestLogistic.*per-label sigmoids"):
        save_model(ovr, tmp_path / "o.skm", temperature=2.0)
    ts = softmaxkit.TemperatureScaler()
    ts.temperature_, ts.n_classes_ = 1.5, 3
    with pytest.raises(ModelFileError, match=r"TemperatureScaler carries its own temperature_ "
                                             r"\(1.5\)"):
        save_model(ts, tmp_path / "t.skm", temperature=3.0)
    assert not os.listdir(tmp_path)
    # without temperature both are saved as before
    assert load_model(save_model(ovr, tmp_path / "o.skm"), return_metadata=True)[1][
        "temperature"] is None
    assert load_model(save_model(ts, tmp_path / "t.skm")).temperature_ == 1.5


def test_temperature_scaler_file_without_nll_still_loads(tmp_path):
    # files written before nll_ and nll_uncalibrated_ were stored hold only
    # temperature_, n_classes_ and n_iter_: they load, without the two attributes
    ts = softmaxkit.TemperatureScaler()
    ts.temperature_, ts.n_classes_, ts.n_iter_ = 2.5, 3, 4
    p = save_model(ts, tmp_path / "old.skm")
    with zipfile.ZipFile(p) as zf:
        assert sorted(json.loads(zf.read("metadata.json"))["arrays"]) == [
            "n_classes_", "n_iter_", "temperature_"]
    m = load_model(p)
    assert (m.temperature_, m.n_classes_, m.n_iter_) == (2.5, 3, 4)
    assert not hasattr(m, "nll_") and not hasattr(m, "nll_uncalibrated_")


# ------------------------------------------------------------- atomic writes
@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_saving_through_a_symlink_writes_its_target(tmp_path, data, fitted):
    X, y = data
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "target.skm"
    save_model(fitted, target)
    link = tmp_path / "link.skm"
    os.symlink(target, link)
    other = softmaxkit.SoftmaxRegression(C=0.1).fit(X, y)
    assert save_model(other, link) == str(link)
    assert link.is_symlink()  # the link is kept, its target replaced
    assert load_model(target).get_params()["C"] == 0.1
    assert sorted(os.listdir(tmp_path / "real")) == ["target.skm"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o444])
def test_overwriting_keeps_the_mode(tmp_path, fitted, mode):
    p = save_model(fitted, tmp_path / "m.skm")
    os.chmod(p, mode)
    old = os.umask(0o022)
    try:
        save_model(fitted, p)
    finally:
        os.umask(old)
    assert os.stat(p).st_mode & 0o777 == mode


def test_saving_leaves_the_process_umask_alone(tmp_path, fitted, monkeypatch):
    # os.umask(0) followed by a restore is not thread-safe: a file created by
    # another thread in between gets mode 0666
    def no_umask(mask):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", no_umask)
    save_model(fitted, tmp_path / "m.skm")
    save_model(fitted, tmp_path / "m.skm")
    assert load_model(tmp_path / "m.skm").classes_.tolist() == ["ant", "bee", "cicada"]


@pytest.mark.parametrize("target, error", [
    ("adir", IsADirectoryError),
    ("adir/", IsADirectoryError),
    ("nodir/", IsADirectoryError),
    ("", FileNotFoundError),
])
def test_unwritable_targets_are_named_never_the_temporary_file(tmp_path, fitted, monkeypatch,
                                                               target, error):
    work = tmp_path / "work"
    (work / "adir").mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(error) as info:
        save_model(fitted, target)
    assert info.value.filename == target
    assert ".tmp" not in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["work"]
    assert sorted(os.listdir(work)) == ["adir"] and os.listdir(work / "adir") == []


def test_replace_errors_name_the_target(tmp_path, fitted, monkeypatch):
    def fail(src, dst):
        raise PermissionError(13, "Permission denied", src, dst)

    monkeypatch.setattr(os, "replace", fail)
    target = tmp_path / "m.skm"
    with pytest.raises(PermissionError) as info:
        save_model(fitted, target)
    assert info.value.filename == str(target) and ".tmp" not in str(info.value)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------ the stored temperature
def _documented_formulas():
    """The calibrated-probability formulas the docs give, as Python expressions."""
    import re

    import softmaxkit.io

    found = []
    for doc in (save_model.__doc__, softmaxkit.io.__doc__):
        text = " ".join(doc.split())
        found += re.findall(r"``(softmaxkit\.softmax\([^`]*\))``", text)
    return found


@pytest.mark.parametrize("k", [2, 3])
def test_documented_calibration_formula_works_for_any_class_count(tmp_path, data, k):
    X, y = data
    model = softmaxkit.SoftmaxRegression().fit(X, y % k)
    m, meta = load_model(save_model(model, tmp_path / "m.skm", temperature=1.7),
                         return_metadata=True)
    T = meta["temperature"]
    Z = X @ m.coef_.T + m.intercept_  # the logits, (n, K) whatever K
    expected = np.exp(Z / T - np.max(Z / T, axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    formulas = _documented_formulas()
    assert len(formulas) == 2, formulas
    for formula in formulas:
        got = eval(formula, {"softmaxkit": softmaxkit, "model": m, "X": X, "T": T})
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    # the loaded estimator does not apply it
    assert not np.allclose(m.predict_proba(X), expected)


@pytest.mark.parametrize("temperature", ["x", "2.0", [2.0], True, 0, -1.0, float("nan"),
                                         float("inf")])
def test_invalid_temperature_is_refused_on_save(tmp_path, fitted, temperature):
    # 'x' raised a bare ValueError from float(); '2.0' and True were stored as 2.0 and 1.0
    with pytest.raises(ModelFileError, match="temperature must be a finite float > 0"):
        save_model(fitted, tmp_path / "m.skm", temperature=temperature)
    assert os.listdir(tmp_path) == []
    assert load_model(save_model(fitted, tmp_path / "m.skm", temperature=np.float32(2.5)),
                      return_metadata=True)[1]["temperature"] == 2.5
