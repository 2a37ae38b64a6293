"""The command line, driven through ``main(argv)``: every command, every
expected error (one ``error:`` line on stderr, non-zero exit, no traceback, no
output file left behind), and fit -> predict -> evaluate round trips checked
against the library and scikit-learn."""

import io
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import softmaxkit
from softmaxkit.cli import main
from softmaxkit.io import load_model


# ------------------------------------------------------------------ helpers
def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(capsys, argv, match, *, tmp_path=None, code=None):
    """One line 'error: ...' on stderr, non-zero exit, no stdout, no new files."""
    before = sorted(os.listdir(tmp_path)) if tmp_path is not None else None
    rc, out, err = run(capsys, *argv)
    assert rc != 0 if code is None else rc == code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert re.search(match, lines[0]), lines[0]
    assert "Traceback" not in err
    assert out == ""
    if tmp_path is not None:
        assert sorted(os.listdir(tmp_path)) == before  # no partial output, no temp file
    return lines[0]


@pytest.fixture(scope="module")
def iris_df():
    from sklearn.datasets import load_iris

    data = load_iris()
    df = pd.DataFrame(data.data, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    df["species"] = np.array(["setosa", "versicolor", "virginica"])[data.target]
    return df


@pytest.fixture
def iris_csv(tmp_path, iris_df):
    p = tmp_path / "iris.csv"
    iris_df.to_csv(p, index=False)
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory, iris_df):
    """A model trained once through the CLI, shared by the read-only tests."""
    d = tmp_path_factory.mktemp("trained")
    csv = d / "iris.csv"
    iris_df.to_csv(csv, index=False)
    model = d / "iris.skm"
    assert main(["fit", str(csv), "--target", "species", "--model", str(model),
                 "--calibrate"]) == 0
    return model, csv


def csv_file(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------ help/version
def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.strip() == f"softmaxkit {softmaxkit.__version__}"


@pytest.mark.parametrize("cmd", [[], ["demo"], ["fit"], ["predict"], ["evaluate"], ["inspect"]])
def test_help_everywhere(capsys, cmd):
    rc, out, _ = run(capsys, *cmd, "--help")
    assert rc == 0 and out.startswith("usage: softmaxkit")


def test_no_command(capsys):
    assert_error(capsys, [], r"required: COMMAND", code=2)


def test_unknown_command(capsys):
    assert_error(capsys, ["train"], r"invalid choice: 'train'", code=2)


# --------------------------------------------------------------- round trips
def test_fit_predict_evaluate_csv_string_labels(tmp_path, capsys, iris_csv, iris_df):
    model = tmp_path / "m.skm"
    rc, out, err = run(capsys, "fit", iris_csv, "--target", "species", "--model", model,
                       "--calibrate", "--test-size", "0.3")
    assert rc == 0, err
    assert f"model written to {model}" in out
    m, meta = load_model(model, return_metadata=True)
    assert m.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert meta["temperature"] > 0
    tr = meta["metadata"]["training"]
    assert tr["n_rows"] == 150 and tr["n_held_out"] == 45
    assert tr["n_train"] + tr["n_calibration"] == 105
    acc = re.search(r"accuracy\s+([\d.]+)", out.split("held-out metrics")[1]).group(1)
    assert float(acc) == pytest.approx(tr["held_out"]["accuracy"], abs=5e-5)

    # predict: CSV file with probabilities; the prediction is the last column
    pred_csv = tmp_path / "pred.csv"
    rc, _, err = run(capsys, "predict", model, iris_csv, "--output", pred_csv, "--proba")
    assert rc == 0, err
    pred = pd.read_csv(pred_csv)
    assert list(pred.columns) == ["proba_setosa", "proba_versicolor", "proba_virginica",
                                  "prediction"]
    assert len(pred) == len(iris_df)
    X = iris_df.drop(columns="species")
    np.testing.assert_array_equal(pred["prediction"], m.predict(X))  # argmax unchanged by T
    expected = softmaxkit.softmax(m.predict_log_proba(X), axis=1,
                                  temperature=meta["temperature"])
    np.testing.assert_allclose(pred.iloc[:, :3].to_numpy(), expected, rtol=1e-12)

    # predict to stdout without --proba: one column
    rc, out, _ = run(capsys, "predict", model, iris_csv)
    stdout_pred = pd.read_csv(io.StringIO(out))
    assert list(stdout_pred.columns) == ["prediction"]
    np.testing.assert_array_equal(stdout_pred["prediction"], pred["prediction"])

    # evaluate: numbers agree with scikit-learn on the written predictions
    from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score

    rc, out, err = run(capsys, "evaluate", model, iris_csv, "--target", "species")
    assert rc == 0, err
    y = iris_df["species"]
    got = dict(re.findall(r"^\s+(accuracy|log-loss)\s+([\d.]+)", out, flags=re.M))
    assert float(got["accuracy"]) == pytest.approx(accuracy_score(y, pred["prediction"]),
                                                   abs=5e-5)
    assert float(got["log-loss"]) == pytest.approx(
        log_loss(y, pred.iloc[:, :3].to_numpy(), labels=m.classes_), abs=5e-5)
    prec = precision_score(y, pred["prediction"], average=None, labels=m.classes_)
    rec = recall_score(y, pred["prediction"], average=None, labels=m.classes_)
    for name, p, r in zip(m.classes_, prec, rec, strict=True):
        row = re.search(rf"^\s+{name}\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", out, flags=re.M)
        assert float(row.group(1)) == pytest.approx(p, abs=5e-4)
        assert float(row.group(2)) == pytest.approx(r, abs=5e-4)
    assert "confusion matrix" in out


def test_fit_predict_evaluate_parquet(tmp_path, capsys):
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    data = tmp_path / "wine.parquet"
    wine.to_parquet(data)
    model = tmp_path / "wine.skm"
    rc, out, err = run(capsys, "fit", data, "--target", "target", "--model", model,
                       "--features", "alcohol,flavanoids,proline,hue", "--C", "0.5",
                       "--penalty", "elasticnet", "--l1-ratio", "0.5")
    assert rc == 0, err
    m, meta = load_model(model, return_metadata=True)
    assert m.get_params()["penalty"] == "elasticnet" and m.get_params()["l1_ratio"] == 0.5
    assert meta["metadata"]["features"] == ["alcohol", "flavanoids", "proline", "hue"]
    assert m.classes_.dtype.kind == "i"

    out_pq = tmp_path / "pred.parquet"
    rc, _, err = run(capsys, "predict", model, data, "-o", out_pq)
    assert rc == 0, err
    pred = pd.read_parquet(out_pq)
    assert len(pred) == len(wine) and pred.columns[-1] == "prediction"
    X = wine[["alcohol", "flavanoids", "proline", "hue"]]
    np.testing.assert_array_equal(pred["prediction"].to_numpy(), m.predict(X))

    plots = tmp_path / "plots"
    rc, out, err = run(capsys, "evaluate", model, data, "--target", "target", "--plots", plots)
    assert rc == 0, err
    for name in ("confusion_matrix.png", "reliability.png", "loss_curve.png"):
        raw = (plots / name).read_bytes()
        assert raw[:4] == b"\x89PNG" and len(raw) > 5000
    from sklearn.metrics import accuracy_score

    acc = float(re.search(r"accuracy\s+([\d.]+)", out).group(1))
    assert acc == pytest.approx(accuracy_score(wine["target"], pred["prediction"]), abs=5e-5)


def test_fit_without_holdout_and_inspect(tmp_path, capsys, iris_csv):
    model = tmp_path / "m.skm"
    rc, out, _ = run(capsys, "fit", iris_csv, "--target", "species", "--model", model,
                     "--test-size", "0", "--class-weight", "balanced")
    assert rc == 0 and "held-out metrics: none" in out
    m = load_model(model)
    assert m.get_params()["class_weight"] == "balanced"
    rc, out, _ = run(capsys, "inspect", model, "--top", "2")
    assert rc == 0
    assert "classes       3: setosa, versicolor, virginica" in out
    assert "temperature   none" in out
    # the top weights shown are the largest |coef_| of each class
    names = ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    for r, cls in enumerate(m.classes_):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(cls + " "))
        top = [names[j] for j in np.argsort(-np.abs(m.coef_[r]))[:2]]
        assert re.findall(r"(\w+) [+-][\d.e+-]+[,;]", line)[:2] == top


def test_inspect_calibrated(capsys, trained):
    model, _ = trained
    rc, out, _ = run(capsys, "inspect", model)
    T = load_model(model, return_metadata=True)[1]["temperature"]
    assert rc == 0 and f"temperature   {T:.4f}" in out
    assert "features      4: sepal_l (float64)" in out


# -------------------------------------------------------------------- demo
def test_demo(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    rc, out, err = run(capsys, "demo", "--out", out_dir, "--n-samples", "400")
    assert rc == 0, err
    names = ["loss_curve.png", "confusion_matrix.png", "reliability.png",
             "softmax_temperature.png", "softmax_jacobian.png"]
    assert sorted(os.listdir(out_dir)) == sorted(names)
    for n in names:
        raw = (out_dir / n).read_bytes()
        assert raw[:4] == b"\x89PNG" and len(raw) > 10000
    vals = dict(re.findall(r"^\s+(test accuracy|train accuracy|fitted temperature)\s+([\d.]+)",
                           out, flags=re.M))
    assert 0.85 < float(vals["test accuracy"]) <= 1.0
    assert float(vals["fitted temperature"]) > 0
    assert re.search(r"test ECE\s+[\d.]+ -> [\d.]+ after temperature scaling", out)
    assert re.search(r"test log-loss\s+[\d.]+ -> [\d.]+", out)


def test_demo_out_is_a_file(tmp_path, capsys):
    f = csv_file(tmp_path, "x.csv", "a\n")
    assert_error(capsys, ["demo", "--out", f], r"not a directory", tmp_path=tmp_path)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "text, extra, match",
    [
        ("a,b,y\n1,2,u\n3,abc,v\n", [], r"column 'b', row 2 of .*'abc' is not a number"),
        ("a,b,y\n1,2,u\n3,,v\n", [], r"column 'b', row 2 of .*missing value"),
        ("a,b,y\n1,2,u\nNaN,4,v\n", [], r"column 'a', row 2 of .*missing value"),
        ("a,b,z\n1,2,u\n3,4,v\n", [], r"target column 'y' not found .*columns are: 'a', 'b', 'z'"),
        ("a,b,y\n1,2,u\n3,4,v\n", ["--features", "a,c,d"],
         r"feature columns not found in .*: 'c', 'd'"),
        ("", [], r"is empty"),
        ("a,b,y\n", [], r"has a header but no data rows"),
        ("a,b,y\n1,2,u\n3,4,u\n5,6,u\n", [], r"single class \('u'\)"),
    ],
)
def test_fit_data_errors(tmp_path, capsys, text, extra, match):
    data = csv_file(tmp_path, "d.csv", text)
    assert_error(capsys, ["fit", data, "--target", "y", "--model", tmp_path / "m.skm", *extra],
                 match, tmp_path=tmp_path)


def test_fit_missing_input(tmp_path, capsys):
    assert_error(capsys, ["fit", tmp_path / "nope.csv", "--target", "y", "--model",
                          tmp_path / "m.skm"], r"input file .*nope.csv' does not exist",
                 tmp_path=tmp_path)


@pytest.mark.parametrize(
    "opts, match",
    [
        (["--C", "-1"], r"argument --C: --C must be in \(0, inf\]; got '-1'"),
        (["--C", "abc"], r"--C must be a number; got 'abc'"),
        (["--test-size", "1.5"], r"--test-size must be in \[0, 1\)"),
        (["--penalty", "l3"], r"argument --penalty: invalid choice: 'l3'"),
        (["--l1-ratio", "0.5"], r"--l1-ratio is only used with --penalty elasticnet"),
        (["--penalty", "elasticnet"], r"--penalty elasticnet needs --l1-ratio"),
        (["--max-iter", "0"], r"--max-iter must be >= 1"),
        (["--features", "a,,b"], r"comma-separated list"),
    ],
)
def test_fit_bad_option_values(tmp_path, capsys, iris_csv, opts, match):
    assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model",
                          tmp_path / "m.skm", *opts], match, tmp_path=tmp_path)


def test_fit_bad_solver_is_a_usage_error(tmp_path, capsys, iris_csv):
    from softmaxkit.cli._parser import SOLVERS
    from softmaxkit.models._softmax_regression import _SOLVERS

    assert SOLVERS == _SOLVERS  # the command line offers exactly the estimator's solvers
    assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model",
                          tmp_path / "m.skm", "--solver", "bogus"],
                 r"argument --solver: invalid choice: 'bogus' \(choose from .*'lbfgs'",
                 tmp_path=tmp_path, code=2)
    rc, out, err = run(capsys, "fit", iris_csv, "--target", "species", "--model",
                       tmp_path / "m.skm", "--solver", "lbfgs")
    assert rc == 0, err


def test_fit_unwritable_model_path(tmp_path, capsys, iris_csv):
    assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model",
                          tmp_path / "no" / "such" / "m.skm"], r"directory .* does not exist",
                 tmp_path=tmp_path)
    assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model", tmp_path],
                 r"it is a directory", tmp_path=tmp_path)


def test_fit_write_failure_leaves_nothing(tmp_path, capsys, iris_csv, monkeypatch):
    import zipfile

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail)
    assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model",
                          tmp_path / "m.skm"], r"No space left on device", tmp_path=tmp_path)


def test_predict_missing_columns(tmp_path, capsys, trained):
    model, _ = trained
    data = csv_file(tmp_path, "d.csv", "sepal_l,petal_w,other\n1,2,3\n")
    assert_error(capsys, ["predict", model, data, "-o", tmp_path / "p.csv"],
                 r"missing the model's feature columns: 'sepal_w', 'petal_l'", tmp_path=tmp_path)


def test_predict_ignores_extra_columns_and_order(tmp_path, capsys, trained, iris_df):
    model, _ = trained
    shuffled = iris_df[["petal_w", "species", "sepal_l", "petal_l", "sepal_w"]].head(7)
    shuffled.insert(0, "id", range(7))
    data = tmp_path / "d.csv"
    shuffled.to_csv(data, index=False)
    rc, out, _ = run(capsys, "predict", model, data)
    assert rc == 0
    m = load_model(model)
    X = iris_df.drop(columns="species").head(7)
    assert pd.read_csv(io.StringIO(out))["prediction"].tolist() == m.predict(X).tolist()


@pytest.mark.parametrize(
    "text, match",
    [
        ("sepal_l,sepal_w,petal_l,petal_w\n1,2,3,4\n1,x,3,4\n",
         r"column 'sepal_w', row 2 .*'x' is not a number"),
        ("sepal_l,sepal_w,petal_l,petal_w\n1,2,3,\n", r"column 'petal_w', row 1 .*missing"),
        ("", r"is empty"),
        ("sepal_l,sepal_w,petal_l,petal_w\n", r"header but no data rows"),
    ],
)
def test_predict_data_errors(tmp_path, capsys, trained, text, match):
    model, _ = trained
    data = csv_file(tmp_path, "d.csv", text)
    assert_error(capsys, ["predict", model, data, "--output", tmp_path / "p.csv"], match,
                 tmp_path=tmp_path)


def test_predict_output_errors(tmp_path, capsys, trained):
    model, csv = trained
    assert_error(capsys, ["predict", model, csv, "-o", tmp_path / "p.txt"],
                 r"unsupported output type '.txt'", tmp_path=tmp_path)
    assert_error(capsys, ["predict", model, csv, "-o", tmp_path / "nope" / "p.csv"],
                 r"directory .* does not exist", tmp_path=tmp_path)
    assert_error(capsys, ["predict", model, csv, "-o", tmp_path], r"it is a directory",
                 tmp_path=tmp_path)


def test_predict_write_failure_leaves_nothing(tmp_path, capsys, trained, monkeypatch):
    model, csv = trained

    def fail(self, *a, **k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail)
    assert_error(capsys, ["predict", model, csv, "-o", tmp_path / "p.parquet"],
                 r"Input/output error", tmp_path=tmp_path)


def test_model_file_errors(tmp_path, capsys, trained):
    _, csv = trained
    assert_error(capsys, ["predict", tmp_path / "none.skm", csv], r"does not exist")
    bad = csv_file(tmp_path, "bad.skm", "not a model")
    assert_error(capsys, ["inspect", bad], r"not a softmaxkit model file")
    raw = trained[0].read_bytes()
    trunc = tmp_path / "trunc.skm"
    trunc.write_bytes(raw[: len(raw) // 2])
    assert_error(capsys, ["evaluate", trunc, csv, "--target", "species"],
                 r"truncated or corrupted")


def test_model_file_of_a_scaler_is_not_a_classifier(tmp_path, capsys, trained):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    ts = softmaxkit.TemperatureScaler().fit(z, np.argmax(z + rng.gumbel(size=z.shape), axis=1))
    p = softmaxkit.io.save_model(ts, tmp_path / "t.skm")
    assert_error(capsys, ["predict", p, trained[1]],
                 r"holds a TemperatureScaler; the command line works with SoftmaxRegression")


def test_evaluate_errors(tmp_path, capsys, trained):
    model, _ = trained
    data = csv_file(tmp_path, "d.csv",
                    "sepal_l,sepal_w,petal_l,petal_w,species\n1,2,3,4,setosa\n1,2,3,4,tulip\n")
    assert_error(capsys, ["evaluate", model, data, "--target", "species"],
                 r"label the model was not trained on: 'tulip'", tmp_path=tmp_path)
    assert_error(capsys, ["evaluate", model, data, "--target", "kind"],
                 r"target column 'kind' not found", tmp_path=tmp_path)
    assert_error(capsys, ["evaluate", model, data], r"required: --target", tmp_path=tmp_path,
                 code=2)
    assert_error(capsys, ["evaluate", model, data, "--target", "species", "--plots", data],
                 r"not a directory", tmp_path=tmp_path)


def test_progress_bar_on_long_fits(tmp_path, capsys, iris_csv, monkeypatch):
    """The rich bar appears on a terminal once a fit has run > 1 s (fake clock)."""
    from softmaxkit.cli import _commands

    clock = iter(np.arange(0.0, 1e6, 0.7))
    monkeypatch.setattr(_commands.time, "perf_counter", lambda: float(next(clock)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    seen = []
    real = softmaxkit.solvers.on_iteration

    def spy(fn):
        def wrapped(info):
            seen.append(info)
            return fn(info)

        return real(wrapped)

    monkeypatch.setattr(softmaxkit.solvers, "on_iteration", spy)
    rc, _, err = run(capsys, "fit", iris_csv, "--target", "species", "--model",
                     tmp_path / "m.skm")
    assert rc == 0
    assert seen and {"iteration", "objective", "grad_norm", "max_iter"} <= set(seen[0])
    assert "fitting" in err


def test_fit_warnings_are_one_line_each(tmp_path, capsys, iris_csv):
    rc, out, err = run(capsys, "fit", iris_csv, "--target", "species", "--model",
                       tmp_path / "m.skm", "--max-iter", "1", "--solver", "lbfgs")
    assert rc == 0 and "model written" in out
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines)
    assert any("max_iter" in line or "converge" in line.lower() for line in lines)


def test_library_model_without_feature_names(tmp_path, capsys, iris_df):
    X = iris_df.drop(columns="species").to_numpy()
    model = softmaxkit.SoftmaxRegression().fit(X, iris_df["species"].to_numpy())
    p = softmaxkit.io.save_model(model, tmp_path / "np.skm")
    data = tmp_path / "x.csv"
    pd.DataFrame(X[:5], columns=list("abcd")).to_csv(data, index=False)
    rc, out, err = run(capsys, "predict", p, data)
    assert rc == 0
    assert pd.read_csv(io.StringIO(out))["prediction"].tolist() == model.predict(X[:5]).tolist()
    # matched by position: said once, on stderr, naming the columns used
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ")
    assert "by position ('a', 'b', 'c', 'd')" in lines[0] and "count (4)" in lines[0]
    rc, out, _ = run(capsys, "inspect", p)
    assert rc == 0 and "features      4 (unnamed)" in out
    pd.DataFrame(X[:5, :3]).to_csv(data, index=False)
    assert_error(capsys, ["predict", p, data], r"expects 4 feature columns; .* has 3")


# ---------------------------------------------------------------- subprocess
def test_console_script_and_module(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "softmaxkit")
    cmd = [exe] if os.path.exists(exe) else ["softmaxkit"]
    r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"softmaxkit {softmaxkit.__version__}"
    r = subprocess.run([sys.executable, "-m", "softmaxkit", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "demo" in r.stdout and "evaluate" in r.stdout
    r = subprocess.run([sys.executable, "-m", "softmaxkit", "inspect", str(tmp_path / "x.skm")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_inspect_l1_model_shows_only_nonzero_weights(tmp_path, capsys, iris_csv):
    model = tmp_path / "l1.skm"
    assert run(capsys, "fit", iris_csv, "--target", "species", "--model", model,
               "--penalty", "l1", "--C", "0.3")[0] == 0
    m = load_model(model)
    rc, out, _ = run(capsys, "inspect", model, "--top", "4")
    assert rc == 0
    for r, cls in enumerate(m.classes_):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(cls + " "))
        nnz = np.count_nonzero(m.coef_[r])
        assert len(re.findall(r"\w+ [+-][\d.e+-]+[ ,;]", line.split(";")[0] + ";")) == nnz
        if nnz == 0:
            assert "all weights 0" in line


# ------------------------------------------------------------- never lose data
def test_fit_refuses_to_write_the_model_over_its_data(tmp_path, capsys, iris_csv):
    before = iris_csv.read_bytes()
    link = tmp_path / "link.skm"
    link.symlink_to(iris_csv)
    sub = tmp_path / "sub"
    sub.mkdir()
    for model in (iris_csv, sub / ".." / "iris.csv", link):
        line = assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model", model],
                            r"--model .* is the input data file", tmp_path=tmp_path)
        assert "destroy" in line
        assert iris_csv.read_bytes() == before


def test_fit_refuses_a_data_extension_for_the_model(tmp_path, capsys, iris_csv):
    other = tmp_path / "other.csv"
    other.write_text("keep me\n")
    for name in ("other.csv", "new.parquet", "NEW.PQ"):
        line = assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model",
                                     tmp_path / name],
                            r"data file extension .*model files use \.skm", tmp_path=tmp_path)
        assert ".skm'" in line
    assert other.read_text() == "keep me\n"


def test_fit_refuses_data_as_model_with_the_dask_engine_too(tmp_path, capsys, iris_csv):
    before = iris_csv.read_bytes()
    assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model", iris_csv,
                          "--engine", "dask"], r"is the input data file", tmp_path=tmp_path)
    assert iris_csv.read_bytes() == before


def test_predict_refuses_to_write_over_its_inputs(tmp_path, capsys, trained):
    model, csv = trained
    data = tmp_path / "d.csv"
    data.write_bytes(csv.read_bytes())
    model_csv = tmp_path / "model.csv"  # a model file with a data extension (older CLI)
    model_csv.write_bytes(model.read_bytes())
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    snapshot = {p: p.read_bytes() for p in (data, model_csv)}
    for out in (data, f"{tmp_path}/./d.csv", link):
        assert_error(capsys, ["predict", model, data, "-o", out],
                     r"--output .* is the input data file", tmp_path=tmp_path)
    assert_error(capsys, ["predict", model_csv, data, "-o", model_csv],
                 r"--output .* is the model file", tmp_path=tmp_path)
    assert {p: p.read_bytes() for p in snapshot} == snapshot


# ------------------------------------------------------- labels read as written
def _labelled_csv(tmp_path, name, labels, seed=0):
    """Two well-separated features per class, labels as given (strings)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, lab in enumerate(labels):
        centre = np.array([np.cos(2 * np.pi * k / len(labels)),
                           np.sin(2 * np.pi * k / len(labels))]) * 6
        for _ in range(20):
            x = centre + rng.normal(size=2)
            rows.append(f"{x[0]:.6f},{x[1]:.6f},{lab}")
    p = tmp_path / name
    p.write_text("f1,f2,label\n" + "\n".join(rows) + "\n")
    return p


def test_labels_that_pandas_would_merge_stay_distinct(tmp_path, capsys):
    labels = ["1", "01", "1.0", "None", "NA", "null"]
    data = _labelled_csv(tmp_path, "d.csv", labels)
    model = tmp_path / "m.skm"
    rc, out, err = run(capsys, "fit", data, "--target", "label", "--model", model)
    assert rc == 0, err
    m = load_model(model)
    assert sorted(m.classes_.tolist()) == sorted(labels)
    assert "6 classes" in out

    # predict writes the labels as they were written
    rc, out, err = run(capsys, "predict", model, data)
    assert rc == 0, err
    pred = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)["prediction"]
    truth = pd.read_csv(data, dtype=str, keep_default_na=False)["label"]
    assert set(pred) <= set(labels)
    assert (pred == truth).mean() > 0.9

    # evaluate reads the file the same way: every label is known, support 20 each
    rc, out, err = run(capsys, "evaluate", model, data, "--target", "label")
    assert rc == 0, err
    for lab in labels:
        assert re.search(rf"^\s+{re.escape(lab)}\s+[\d.]+\s+[\d.]+\s+20$", out, flags=re.M), lab


def test_zero_padded_labels_evaluate(tmp_path, capsys):
    # distinct numbers: integer classes, as the previous release read them
    data = _labelled_csv(tmp_path, "d.csv", ["01", "02", "03"])
    model = tmp_path / "m.skm"
    assert run(capsys, "fit", data, "--target", "label", "--model", model)[0] == 0
    assert load_model(model).classes_.tolist() == [1, 2, 3]
    other = _labelled_csv(tmp_path, "e.csv", ["01", "02", "03"], seed=1)
    rc, out, err = run(capsys, "evaluate", model, other, "--target", "label")
    assert rc == 0, err
    assert float(re.search(r"accuracy\s+([\d.]+)", out).group(1)) > 0.9


def test_colliding_labels_are_string_classes_matched_by_spelling(tmp_path, capsys):
    # "1" and "01" are the same number, so the three labels are strings
    data = _labelled_csv(tmp_path, "d.csv", ["1", "01", "2"])
    model = tmp_path / "m.skm"
    assert run(capsys, "fit", data, "--target", "label", "--model", model)[0] == 0
    assert sorted(load_model(model).classes_.tolist()) == ["01", "1", "2"]
    # a file holding only "01" and "2" reads as numbers 1, 2; against string
    # classes they match by their spelling: "01" is class '01', never '1'
    rows = ["f1,f2,label"] + [line for line in data.read_text().splitlines()[1:]
                              if line.endswith(",01") or line.endswith(",2")]
    sub = tmp_path / "sub.csv"
    sub.write_text("\n".join(rows) + "\n")
    rc, out, err = run(capsys, "evaluate", model, sub, "--target", "label")
    assert rc == 0, err
    assert re.search(r"^\s+01\s+[\d.]+\s+[\d.]+\s+20$", out, flags=re.M)
    assert re.search(r"^\s+1\s+[\d.]+\s+[\d.]+\s+0$", out, flags=re.M)
    assert re.search(r"^\s+2\s+[\d.]+\s+[\d.]+\s+20$", out, flags=re.M)


def test_int_class_model_evaluates_on_integral_float_labels(tmp_path, capsys):
    # a model of the previous release (int classes 1, 2) on a CSV pandas wrote
    # from a float column ("1.0", "2.0"); also with ", " separators
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = np.where(X[:, 0] > 0, 2, 1)
    Xf = pd.DataFrame(X, columns=["a", "b"])
    model = softmaxkit.SoftmaxRegression().fit(Xf, y)
    assert model.classes_.dtype.kind == "i"
    p = softmaxkit.io.save_model(model, tmp_path / "old.skm")
    data = tmp_path / "train.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y.astype(float)}).to_csv(data, index=False)
    assert ",2.0\n" in data.read_text()
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("a,b,y\n" + "".join(f"{u!r},{v!r}, {c}\n"
                                         for (u, v), c in zip(X.tolist(), y.tolist(), strict=True)))
    want = model.score(Xf, y)
    for f in (data, spaced):
        rc, out, err = run(capsys, "evaluate", p, f, "--target", "y")
        assert rc == 0, err
        acc = float(re.search(r"accuracy\s+([\d.]+)", out).group(1))
        assert acc == pytest.approx(want, abs=5e-5)
    # a label that is not a class is still named
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n0,0,1.0\n0,0,3.0\n")
    assert_error(capsys, ["evaluate", p, bad, "--target", "y"],
                 r"label the model was not trained on: 3 \(model classes: 1, 2\)")


def test_integer_labels_keep_type_and_numeric_order(tmp_path, capsys):
    data = _labelled_csv(tmp_path, "d.csv", ["10", "9", "-2"])
    model = tmp_path / "m.skm"
    assert run(capsys, "fit", data, "--target", "label", "--model", model)[0] == 0
    m = load_model(model)
    assert m.classes_.dtype.kind == "i" and m.classes_.tolist() == [-2, 9, 10]
    # an integer model does not take '09' for 9
    bad = tmp_path / "bad.csv"
    bad.write_text("f1,f2,label\n0,6,09\n0,6,9\n")
    assert_error(capsys, ["evaluate", model, bad, "--target", "label"],
                 r"label the model was not trained on: '09'")


@pytest.mark.parametrize("labels", [[False, True], [0.0, 1.0]])
def test_text_labels_against_bool_or_float_classes(tmp_path, capsys, labels):
    # models whose classes are bool or float (fitted in Python, or written before
    # CSV labels were read as text) still evaluate on a CSV of those labels
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.array(labels)[(X[:, 0] > 0).astype(int)]
    model = softmaxkit.SoftmaxRegression().fit(pd.DataFrame(X, columns=["a", "b"]), y)
    p = softmaxkit.io.save_model(model, tmp_path / "m.skm")
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y}).to_csv(data, index=False)
    rc, out, err = run(capsys, "evaluate", p, data, "--target", "y")
    assert rc == 0, err
    acc = float(re.search(r"accuracy\s+([\d.]+)", out).group(1))
    assert acc == pytest.approx(model.score(pd.DataFrame(X, columns=["a", "b"]), y), abs=5e-5)


def test_empty_label_is_a_missing_label(tmp_path, capsys):
    data = csv_file(tmp_path, "d.csv", "a,y\n1,u\n2,\n3,v\n")
    assert_error(capsys, ["fit", data, "--target", "y", "--model", tmp_path / "m.skm"],
                 r"target column 'y', row 2 of .*missing label", tmp_path=tmp_path)


# -------------------------------------------------------- non-finite metrics
def test_infinite_held_out_log_loss_still_writes_the_model(tmp_path, capsys):
    from sklearn.model_selection import train_test_split

    # separable training rows; one far-away row labelled against its side gets
    # probability exactly 0 for its true class when it lands in the held-out split
    n = 20
    x = np.concatenate([np.linspace(1, 2, n), -np.linspace(1, 2, n), [1e6]])
    y = np.array(["b"] * n + ["a"] * n + ["a"])
    seed = next(s for s in range(1000) if len(x) - 1 in train_test_split(
        np.arange(len(x)), test_size=0.25, stratify=y, random_state=s)[1])
    data = tmp_path / "d.csv"
    pd.DataFrame({"x": x, "y": y}).to_csv(data, index=False)
    model = tmp_path / "m.skm"
    rc, out, err = run(capsys, "fit", data, "--target", "y", "--model", model,
                       "--penalty", "none", "--seed", seed)
    assert rc == 0, err
    assert re.search(r"^\s+log-loss\s+inf$", out, flags=re.M)
    assert "stored as null" in out and f"model written to {model}" in out
    m, meta = load_model(model, return_metadata=True)
    held = meta["metadata"]["training"]["held_out"]
    assert held["log_loss"] is None
    assert 0 < held["accuracy"] < 1 and np.isfinite(held["ece"])
    assert m.predict(pd.DataFrame({"x": [5.0, -5.0]})).tolist() == ["b", "a"]
    rc, out, _ = run(capsys, "inspect", model)
    assert rc == 0 and re.search(r"held-out .*log-loss n/a", out)


# -------------------------------------------------------- bad input, clear errors
def test_duplicate_header_names(tmp_path, capsys):
    data = csv_file(tmp_path, "d.csv", "a,a,b,y\n1,2,3,u\n4,5,6,v\n")
    assert_error(capsys, ["fit", data, "--target", "y", "--model", tmp_path / "m.skm"],
                 r"more than one column named 'a'", tmp_path=tmp_path)


def test_datetime_feature_columns(tmp_path, capsys):
    df = pd.DataFrame({"a": np.arange(8.0), "when": pd.date_range("2024-01-01", periods=8),
                       "took": pd.to_timedelta(np.arange(8), unit="s"),
                       "y": ["u", "v"] * 4})
    data = tmp_path / "d.parquet"
    df.to_parquet(data)
    assert_error(capsys, ["fit", data, "--target", "y", "--model", tmp_path / "m.skm"],
                 r"feature columns 'when' \(datetime64.*, 'took' \(timedelta64.*dates or "
                 r"durations", tmp_path=tmp_path)


@pytest.mark.parametrize("cmd", ["fit", "demo"])
def test_seed_range(tmp_path, capsys, iris_csv, cmd):
    argv = ["fit", iris_csv, "--target", "species", "--model", tmp_path / "m.skm"] \
        if cmd == "fit" else ["demo", "--out", tmp_path / "demo"]
    for bad in ("99999999999", str(2**32), "-1"):
        assert_error(capsys, [*argv, "--seed", bad], r"argument --seed: --seed must be",
                     tmp_path=tmp_path, code=2)


def test_largest_seed_works(tmp_path, capsys, iris_csv):
    rc, out, err = run(capsys, "fit", iris_csv, "--target", "species", "--model",
                       tmp_path / "m.skm", "--seed", 2**32 - 1)
    assert rc == 0, err
    assert load_model(tmp_path / "m.skm", return_metadata=True)[1]["metadata"]["training"][
        "seed"] == 2**32 - 1


def test_target_that_is_a_model_feature(tmp_path, capsys, trained):
    model, csv = trained
    line = assert_error(capsys, ["evaluate", model, csv, "--target", "sepal_l"],
                        r"--target 'sepal_l' is one of the model's features")
    assert "also listed" not in line


def test_column_names_in_errors_show_spaces(tmp_path, capsys, trained):
    # CSV header names are stripped; Parquet names keep their spaces, shown quoted
    model, _ = trained
    data = tmp_path / "d.parquet"
    pd.DataFrame({"sepal_l ": [1.0], "sepal_w": [2.0], "petal_l": [3.0],
                  "petal_w": [4.0]}).to_parquet(data)
    assert_error(capsys, ["predict", model, data], r"missing the model's feature column: "
                 r"'sepal_l'\.$")
    data = tmp_path / "e.parquet"
    pd.DataFrame({"a": [1.0, 2.0], " y": ["u", "v"]}).to_parquet(data)
    assert_error(capsys, ["fit", data, "--target", "y", "--model", tmp_path / "m.skm"],
                 r"columns are: 'a', ' y'")


def test_empty_zip_model_file(tmp_path, capsys):
    import zipfile

    p = tmp_path / "e.skm"
    with zipfile.ZipFile(p, "w"):
        pass
    assert_error(capsys, ["inspect", p], r"not a softmaxkit model file \(an empty zip")
    p.write_bytes(b"")
    assert_error(capsys, ["inspect", p], r"not a softmaxkit model file \(the file is empty")


# ------------------------------------------------------------- review fixes
def test_evaluate_when_no_row_is_predicted_right(tmp_path, capsys, trained, iris_df):
    """scikit-learn >= 1.9 returns the support as floats when no prediction is
    right; the report and the plots still come out, support as integers."""
    model, _ = trained
    wrong = iris_df.head(3).copy()  # setosa rows, labelled as another class
    wrong["species"] = "versicolor"
    data = tmp_path / "hard.csv"
    wrong.to_csv(data, index=False)
    rc, out, err = run(capsys, "evaluate", model, data, "--target", "species", "--plots",
                       tmp_path / "plots")
    assert rc == 0, err
    assert "accuracy   0.0000" in out
    assert re.search(r"versicolor\s+0\.000\s+0\.000\s+3$", out, re.M), out
    assert "plots written" in out
    assert sorted(os.listdir(tmp_path / "plots")) == ["confusion_matrix.png", "loss_curve.png",
                                                      "reliability.png"]


def _write_lines(path, rows, sep=","):
    path.write_text("".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


def test_csv_saved_with_pandas_index_is_refused(tmp_path, capsys, trained, iris_df):
    """df.to_csv(path) writes the row index as a first column with an empty
    name: on sorted data it leaks the label, so it is refused, not used."""
    model, _ = trained
    data = tmp_path / "d.csv"
    iris_df.to_csv(data)
    match = (r"column 1 of .*d.csv' has an empty header name: it looks like a row index "
             r"saved by pandas' DataFrame.to_csv; drop that column, or save the data with "
             r"index=False")
    assert_error(capsys, ["fit", data, "--target", "species", "--model", tmp_path / "m.skm"],
                 match, tmp_path=tmp_path)
    assert_error(capsys, ["predict", model, data, "-o", tmp_path / "p.csv"], match,
                 tmp_path=tmp_path)
    assert_error(capsys, ["evaluate", model, data, "--target", "species"], match)


def test_parquet_with_a_row_index_column_is_refused(tmp_path, capsys, iris_df):
    data = tmp_path / "d.parquet"
    pd.read_csv(io.StringIO(iris_df.to_csv())).to_parquet(data)  # 'Unnamed: 0' column
    assert_error(capsys, ["fit", data, "--target", "species", "--model", tmp_path / "m.skm"],
                 r"column 'Unnamed: 0' of .* looks like a row index", tmp_path=tmp_path)


def test_trailing_separator_is_refused(tmp_path, capsys):
    data = _write_lines(tmp_path / "d.csv", [("a", "b", "label", ""), (1, 2, "x", ""),
                                             (3, 4, "y", ""), (5, 6, "x", "")])
    assert_error(capsys, ["fit", data, "--target", "label", "--model", tmp_path / "m.skm"],
                 r"column 4 of .* has an empty header name \(the last column\): the lines "
                 r"probably end with a trailing ','", tmp_path=tmp_path)
    data.write_text("a,b,label\n1,2,x,\n3,4,y,\n")  # on the data lines only
    assert_error(capsys, ["fit", data, "--target", "b", "--model", tmp_path / "m.skm"],
                 r"data row 1 \(line 2\) of .* has more fields \(4\) than the header \(3\)",
                 tmp_path=tmp_path)


def test_csv_without_header_is_refused(tmp_path, capsys, trained, iris_df):
    """A header-less CSV would lose its first row to the header: refused."""
    model, _ = trained
    match = (r"the first line looks like data, not a header \(every column name is a "
             r"number\); softmaxkit needs a header row")
    new = tmp_path / "new.csv"
    iris_df.drop(columns="species").head(4).to_csv(new, index=False, header=False)
    assert_error(capsys, ["predict", model, new, "-o", tmp_path / "p.csv"], match,
                 tmp_path=tmp_path)
    data = tmp_path / "d.csv"
    iris_df.to_csv(data, index=False, header=False)  # first line: 5.1,3.5,1.4,0.2,setosa
    assert_error(capsys, ["fit", data, "--target", "setosa", "--model", tmp_path / "m.skm"],
                 match, tmp_path=tmp_path)
    assert_error(capsys, ["fit", data, "--target", "species", "--model", tmp_path / "m.skm"],
                 r"target column 'species' not found .*first line looks like data",
                 tmp_path=tmp_path)


def test_comma_space_separated_csv(tmp_path, capsys, trained, iris_df):
    """', '-separated files: header names are stripped like the labels."""
    model, _ = trained
    data = _write_lines(tmp_path / "d.csv", [iris_df.columns, *iris_df.to_numpy()], sep=", ")
    rc, out, err = run(capsys, "fit", data, "--target", "species", "--model",
                       tmp_path / "m.skm")
    assert rc == 0, err
    assert load_model(tmp_path / "m.skm", return_metadata=True)[1]["metadata"]["features"] \
        == ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    rc, out, err = run(capsys, "predict", model, data)
    assert rc == 0, err
    m = load_model(model)
    expected = m.predict(iris_df.drop(columns="species")).tolist()
    assert pd.read_csv(io.StringIO(out))["prediction"].tolist() == expected
    data = _write_lines(tmp_path / "e.csv", [("a", " a", "y"), (1, 2, "u"), (3, 4, "v")])
    assert_error(capsys, ["fit", data, "--target", "y", "--model", tmp_path / "m2.skm"],
                 r"more than one column named 'a' \(surrounding spaces stripped\)")


def test_model_with_spaced_feature_names_still_predicts(tmp_path, capsys, iris_df):
    """A model fitted on names with surrounding spaces (as a ', '-separated
    file gave before header names were stripped) reads a file by stripped name."""
    X = iris_df.drop(columns="species").head(60)
    X.columns = ["sepal_l", " sepal_w", " petal_l", " petal_w"]
    model = softmaxkit.SoftmaxRegression().fit(X, iris_df["species"].head(60))
    p = softmaxkit.io.save_model(model, tmp_path / "old.skm")
    data = _write_lines(tmp_path / "d.csv", [X.columns, *X.to_numpy()[:5]], sep=",")
    rc, out, err = run(capsys, "predict", p, data)
    assert rc == 0, err
    assert pd.read_csv(io.StringIO(out))["prediction"].tolist() == \
        model.predict(X.head(5)).tolist()


@pytest.mark.parametrize("sep", [";", "\t"])
def test_csv_with_another_separator_gets_a_hint(tmp_path, capsys, iris_df, sep):
    data = _write_lines(tmp_path / "d.csv", [iris_df.columns, *iris_df.to_numpy()], sep=sep)
    assert_error(capsys, ["fit", data, "--target", "species", "--model", tmp_path / "m.skm"],
                 r"has a single column, named .*: the file may be separated by "
                 + re.escape(repr(sep)), tmp_path=tmp_path)


def test_sep_and_decimal_round_trip(tmp_path, capsys, iris_df, trained):
    """A ';'-separated file with decimal commas trains the same model as the
    comma file, and predict writes its CSV in the same format."""
    model_comma, csv = trained
    eu = tmp_path / "eu.csv"
    iris_df.to_csv(eu, sep=";", decimal=",", index=False)
    m = tmp_path / "eu.skm"
    rc, _, err = run(capsys, "fit", eu, "--target", "species", "--model", m, "--calibrate",
                     "--sep", "semicolon", "--decimal", ",")
    assert rc == 0, err
    a, b = load_model(m), load_model(model_comma)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    rc, out, err = run(capsys, "predict", m, eu, "--proba", "--sep", ";", "--decimal", ",")
    assert rc == 0, err
    got = pd.read_csv(io.StringIO(out), sep=";", decimal=",")
    rc, out, err = run(capsys, "predict", model_comma, csv, "--proba")
    want = pd.read_csv(io.StringIO(out))
    pd.testing.assert_frame_equal(got, want)
    out_file = tmp_path / "p.csv"
    rc, _, err = run(capsys, "predict", m, eu, "-o", out_file, "--sep", ";", "--decimal", ",")
    assert rc == 0, err
    assert out_file.read_text().splitlines()[:2] == ["prediction", "setosa"]
    rc, out, err = run(capsys, "evaluate", m, eu, "--target", "species", "--sep", ";",
                       "--decimal", ",")
    assert rc == 0, err
    rc, out_comma, err = run(capsys, "evaluate", model_comma, csv, "--target", "species")
    strip = lambda text: re.sub(r"evaluated \S+ on \S+", "", text)  # noqa: E731
    assert strip(out) == strip(out_comma)


@pytest.mark.parametrize("argv, match", [
    (["--sep", "ab"], r"argument --sep: --sep must be one character"),
    (["--sep", "x"], r"argument --sep: --sep must be one character"),
    (["--decimal", ";"], r"argument --decimal: invalid choice"),
    (["--decimal", ","], r"--decimal ',' needs another --sep than ','"),
])
def test_bad_sep_or_decimal_is_a_usage_error(tmp_path, capsys, iris_csv, argv, match):
    for cmd in (["fit", iris_csv, "--target", "species", "--model", tmp_path / "m.skm"],
                ["predict", tmp_path / "none.skm", iris_csv],
                ["evaluate", tmp_path / "none.skm", iris_csv, "--target", "species"]):
        assert_error(capsys, cmd + argv, match, tmp_path=tmp_path, code=2)


def test_tab_separated_file_with_sep_tab(tmp_path, capsys, iris_df, trained):
    model, _ = trained
    data = _write_lines(tmp_path / "d.csv", [iris_df.columns, *iris_df.to_numpy()[:4]],
                        sep="\t")
    rc, out, err = run(capsys, "predict", model, data, "--sep", "tab")
    assert rc == 0, err
    assert out.splitlines()[1:] == ["setosa"] * 4


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_non_integral_numeric_labels_are_refused(tmp_path, capsys, iris_df, fmt):
    """A classifier takes integer or string classes, not non-integral numbers."""
    df = iris_df.copy()
    df["species"] = df["species"].map({"setosa": 0.5, "versicolor": 1.5, "virginica": 2.25})
    data = tmp_path / f"d.{fmt}"
    df.to_csv(data, index=False) if fmt == "csv" else df.to_parquet(data)
    assert_error(capsys, ["fit", data, "--target", "species", "--model", tmp_path / "m.skm"],
                 r"labels of column 'species' are non-integral numbers \(0.5, 1.5, 2.25\); "
                 r"classes must be integers or strings", tmp_path=tmp_path)


def _with_rare_class(tmp_path, iris_df, n_rare):
    df = pd.concat([iris_df, iris_df.head(n_rare).assign(species="rare")], ignore_index=True)
    data = tmp_path / "rare.csv"
    df.to_csv(data, index=False)
    return data


@pytest.mark.parametrize("seed", [0, 1])
def test_class_too_small_for_the_splits_is_refused_up_front(tmp_path, capsys, iris_df, seed):
    """A class with fewer rows than the splits need: one clear error before
    splitting, whatever the seed (it used to depend on where the row landed)."""
    data = _with_rare_class(tmp_path, iris_df, 1)
    argv = ["fit", data, "--target", "species", "--model", tmp_path / "m.skm", "--seed", seed]
    assert_error(capsys, argv, r"class 'rare' of target column 'species' has only 1 row; a "
                 r"held-out split \(--test-size 0.25\) needs at least 2 rows of every class.*"
                 r"--test-size 0", tmp_path=tmp_path)
    assert_error(capsys, [*argv, "--calibrate"],
                 r"class 'rare' .* has only 1 row; a held-out split \(--test-size 0.25\) and a "
                 r"calibration split \(--calibrate\) need at least 3 rows of every class",
                 tmp_path=tmp_path)
    data = _with_rare_class(tmp_path, iris_df, 2)
    assert_error(capsys, ["fit", data, "--target", "species", "--model", tmp_path / "m.skm",
                          "--seed", seed, "--calibrate"],
                 r"class 'rare' .* has only 2 rows; .*at least 3 rows", tmp_path=tmp_path)
    rc, out, err = run(capsys, *argv, "--test-size", "0")  # trains on every row
    assert rc == 0, err
    assert "rare" in out


@pytest.mark.parametrize("seed", [0, 1, 2, 10])
def test_splits_too_small_for_every_class_are_refused_up_front(tmp_path, capsys, seed):
    """4 classes x 3 rows with --calibrate passed the per-class check, but the
    held-out quarter (3 rows) cannot hold 4 classes: scikit-learn's stratified
    split fails and the random one it fell back to left a class out of the
    training rows for some seeds."""
    data = tmp_path / "small.csv"
    pd.DataFrame({"x": np.arange(12.0), "label": list("abcd") * 3}).to_csv(data, index=False)
    argv = ["fit", data, "--target", "label", "--calibrate", "--seed", seed,
            "--model", tmp_path / "m.skm"]
    assert_error(capsys, argv, r"the held-out split \(--test-size 0.25 of 12 rows\) would "
                 r"hold 3 rows, fewer than the 4 classes", tmp_path=tmp_path)
    rc, out, err = run(capsys, *argv[:4], "--test-size", "0", "--model", tmp_path / "m.skm")
    assert rc == 0, err


def test_predict_reads_number_named_columns_of_the_model(tmp_path, capsys):
    """fit accepted a file whose feature names are decimal wavelengths (its text
    target settles that the first line is a header); predict, on the same
    columns without the target, refused it as header-less."""
    rng = np.random.default_rng(0)
    cols = ["400.5", "401.0", "401.5"]
    df = pd.DataFrame(rng.normal(size=(40, 3)), columns=cols)
    df["label"] = np.where(df["400.5"] > 0, "a", "b")
    df.to_csv(tmp_path / "train.csv", index=False)
    df[cols].head(5).to_csv(tmp_path / "new.csv", index=False)
    rc, _, err = run(capsys, "fit", tmp_path / "train.csv", "--target", "label", "--model",
                     tmp_path / "m.skm")
    assert rc == 0, err
    rc, out, err = run(capsys, "predict", tmp_path / "m.skm", tmp_path / "new.csv")
    assert rc == 0, err
    assert len(out.strip().splitlines()) == 6  # header and 5 predictions


def test_calibration_at_the_temperature_bound_warns_in_cli_terms(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(-3, 0.3, 30), rng.normal(3, 0.3, 30)]
    data = tmp_path / "sep.csv"
    pd.DataFrame({"x": x, "y": ["a"] * 30 + ["b"] * 30}).to_csv(data, index=False)
    rc, out, err = run(capsys, "fit", data, "--target", "y", "--calibrate", "--model",
                       tmp_path / "m.skm")
    assert rc == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: "), err
    assert "bounds" not in lines[0] and "Widen" not in lines[0]
    assert re.search(r"the temperature fitted on the calibration split \(9 rows\) reached its "
                     r"limit, T=0.01: that split is too small or too easily separated", lines[0])


def test_predict_and_evaluate_warnings_are_one_line_each(tmp_path, capsys, trained, iris_df):
    """Warnings of every command are 'warning: ...' lines, not Python's
    'path:line: RuntimeWarning' with the source line."""
    model, _ = trained
    df = iris_df.head(6).copy()
    df["petal_l"] = [1.7e308, -1.7e308] * 3  # overflows the logits
    data = tmp_path / "huge.csv"
    df.to_csv(data, index=False)
    for argv in (["predict", model, data], ["evaluate", model, data, "--target", "species"]):
        rc, out, err = run(capsys, *argv)
        assert rc == 0, err
        lines = err.strip().splitlines()
        assert lines and all(line.startswith("warning: ") for line in lines), err
        assert any("overflow" in line for line in lines)
        assert ".py" not in err


def test_third_party_deprecation_warnings_are_not_shown(capsys):
    import warnings

    from softmaxkit.cli import _commands

    here = _commands.__file__
    with _commands._warnings_to_stderr():
        warnings.warn_explicit("reset_index inplace is deprecated", DeprecationWarning,
                               "/site-packages/dask/dataframe/io.py", 10, module="dask.io")
        warnings.warn_explicit("a pandas future change", FutureWarning,
                               "/site-packages/pandas/core/frame.py", 10)
        warnings.warn_explicit("a softmaxkit deprecation", FutureWarning, here, 1)
        warnings.warn_explicit("overflow in matmul", RuntimeWarning,
                               "/site-packages/numpy/core.py", 1)
    err = capsys.readouterr().err
    assert err.splitlines() == ["warning: a softmaxkit deprecation",
                                "warning: overflow in matmul"]


def _stall_output(marker=None):
    """A DataFrame.to_csv that writes half a file, then waits to be killed."""
    import time

    def to_csv(self, path, *a, **k):
        with open(path, "w") as fh:
            fh.write("prediction\nhalf")
        if marker is None:
            if not callable(signal.getsignal(signal.SIGTERM)):  # would kill pytest itself
                raise AssertionError("the command installs no SIGTERM handler")
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            open(marker, "w").close()
        for _ in range(6000):  # at most a minute; SIGTERM ends it
            time.sleep(0.01)
        raise AssertionError("SIGTERM was not delivered")

    return to_csv


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX")
def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path, capsys, trained,
                                                        monkeypatch):
    """SIGTERM (a timeout, kill, a cancelled CI job) ends a command the way
    Ctrl-C does: temporary file removed, target untouched, one error line,
    exit code 143; the previous SIGTERM handler is restored afterwards."""
    model, csv = trained
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(pd.DataFrame, "to_csv", _stall_output())
    out = tmp_path / "pred.csv"
    assert_error(capsys, ["predict", model, csv, "-o", out], r"^error: terminated \(SIGTERM\)$",
                 tmp_path=tmp_path, code=143)
    assert os.listdir(tmp_path) == []
    out.write_text("old\n")  # an existing target stays as it was
    assert_error(capsys, ["predict", model, csv, "-o", out], r"terminated", code=143)
    assert out.read_text() == "old\n" and os.listdir(tmp_path) == ["pred.csv"]
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX")
@pytest.mark.parametrize("handler", ["ignore", "own"])
def test_an_ignored_or_own_sigterm_handler_is_left_alone(tmp_path, capsys, trained, handler):
    """``trap '' TERM`` (SIGTERM ignored) must stay in force while a command runs,
    and a program running main() in-process keeps its own handler: the CLI only
    takes over SIGTERM's default action (it once made an ignored SIGTERM end the
    command with exit code 143)."""
    model, csv = trained
    seen = []
    own = signal.SIG_IGN if handler == "ignore" else (lambda signum, frame: seen.append(signum))
    previous = signal.signal(signal.SIGTERM, own)
    try:
        from softmaxkit.cli import _commands

        with _commands._sigterm_raises():
            assert signal.getsignal(signal.SIGTERM) is own
            os.kill(os.getpid(), signal.SIGTERM)  # ignored, or handled by the program
        assert main(["predict", str(model), str(csv), "-o", str(tmp_path / "p.csv")]) == 0
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == ([] if handler == "ignore" else [signal.SIGTERM])
    capsys.readouterr()


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigterm_from_outside_subprocess(tmp_path, trained):
    model, csv = trained
    marker = tmp_path / "writing"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = (
        "import sys, pandas as pd\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import test_cli\n"
        "from softmaxkit.cli import main\n"
        "pd.DataFrame.to_csv = test_cli._stall_output(sys.argv[2])\n"
        "sys.exit(main(['predict', sys.argv[3], sys.argv[4], '-o', sys.argv[5]]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, os.path.dirname(__file__), str(marker), str(model),
         str(csv), str(out_dir / "pred.csv")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):  # wait (at most 2 minutes) until it is writing
            if marker.exists() or proc.poll() is not None:
                break
            import time

            time.sleep(0.1)
        assert marker.exists(), proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "error: terminated (SIGTERM)"
    assert os.listdir(out_dir) == []


def test_evaluate_checks_the_plots_directory_first(tmp_path, capsys, trained):
    """A --plots directory that cannot be made fails before the report, like demo."""
    model, csv = trained
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert_error(capsys, ["evaluate", model, csv, "--target", "species", "--plots",
                          blocker / "plots"],
                 r"cannot create plots directory .*file.txt/plots': .*file.txt' is not a "
                 r"directory", tmp_path=tmp_path)


def test_dask_engine_refuses_csv_in_one_line(tmp_path, capsys, iris_csv):
    assert_error(capsys, ["fit", iris_csv, "--target", "species", "--model",
                          tmp_path / "m.skm", "--engine", "dask"],
                 r"--engine dask reads Parquet data only .*; for a CSV file use the default "
                 r"--engine memory", tmp_path=tmp_path)


@pytest.mark.parametrize("value, text", [(-0.0, "0.0000"), (-1e-17, "0.0000"), (1e-17, "0.0000"),
                                         (-0.00004, "0.0000"), (-0.00006, "-0.0001"),
                                         (0.25, "0.2500"), (float("inf"), "inf"),
                                         (float("nan"), "n/a"), (None, "n/a")])
def test_metric_format_has_no_negative_zero(value, text):
    """A calibrated log-loss at the temperature bound (probabilities one rounding
    above 1) printed as '-0.0000'."""
    from softmaxkit.cli._commands import _fmt

    assert _fmt(value) == text


@pytest.mark.parametrize("metadata", [
    [1, 2],
    "text",
    {"training": "x", "features": 5, "feature_dtypes": "y"},
    {"training": {"held_out": {"accuracy": "x"}, "train_accuracy": [1]}},
    {"features": ["a", "b"], "feature_dtypes": ["int64"]},
])
def test_inspect_and_predict_with_free_form_library_metadata(tmp_path, capsys, iris_df, metadata):
    """save_model(..., metadata=...) takes any JSON; inspect assumed the CLI's own
    layout and died with an AttributeError traceback on anything else."""
    X = iris_df.drop(columns="species").to_numpy()
    model = softmaxkit.SoftmaxRegression().fit(X, iris_df["species"])
    p = softmaxkit.io.save_model(model, tmp_path / "m.skm", metadata=metadata)
    rc, out, err = run(capsys, "inspect", p)
    assert rc == 0, err
    assert "Traceback" not in err and "features      4 (unnamed)" in out
    data = _write_lines(tmp_path / "d.csv", [iris_df.columns[:4], *X[:3]])
    rc, out, err = run(capsys, "predict", p, data)
    assert rc == 0, err
    assert out.splitlines()[1:] == ["setosa"] * 3


def test_an_unexpected_exception_is_one_line_unless_debugging(tmp_path, capsys, monkeypatch):
    """A bug (an exception of no expected type) gave a full traceback; it is one
    'error: internal error ...' line, and SOFTMAXKIT_DEBUG=1 still raises it."""
    from softmaxkit.cli import _commands

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setitem(_commands.COMMANDS, "inspect", broken)
    assert_error(capsys, ["inspect", tmp_path / "m.skm"],
                 r"^error: internal error \(KeyError: 'boom'\); please report it, with the "
                 r"traceback that SOFTMAXKIT_DEBUG=1 shows\.$", code=1)
    monkeypatch.setenv("SOFTMAXKIT_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["inspect", str(tmp_path / "m.skm")])
