"""Argument parser of the ``softmaxkit`` command."""

from __future__ import annotations

import argparse
import math

__all__ = ["build_parser", "CLIError", "UsageError", "SOLVERS"]


class CLIError(Exception):
    """An expected error: printed as one ``error: ...`` line, exit code 1."""


class UsageError(CLIError):
    """A bad command line: printed as one ``error: ...`` line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _float_type(name, *, low=None, high=None, low_open=False, high_open=False):
    lo_b = "(" if low_open else "["
    hi_b = ")" if high_open else "]"
    rng = f"{lo_b}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_b}"

    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number; got {text!r}") from None
        ok = not math.isnan(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"{name} must be in {rng}; got {text!r}")
        return v

    return parse


def _int_type(name, low, high=None):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer; got {text!r}") from None
        if high is not None and not low <= v <= high:
            raise argparse.ArgumentTypeError(
                f"{name} must be an integer in [{low}, {high}]; got {text!r}")
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}; got {text!r}")
        return v

    return parse


# SoftmaxRegression's solvers (a test checks this list against the estimator's)
SOLVERS = ("auto", "newton-cg", "newton-cholesky", "lbfgs", "prox-newton")

SEED_MAX = 2**32 - 1  # what NumPy's RandomState (scikit-learn's splits) accepts


def _columns(text):
    cols = [c.strip() for c in text.split(",")]
    if not text.strip() or any(c == "" for c in cols):
        raise argparse.ArgumentTypeError(
            f"--features must be a comma-separated list of column names; got {text!r}"
        )
    if len(set(cols)) != len(cols):
        raise argparse.ArgumentTypeError(f"--features lists a column twice: {text!r}")
    return cols


EPILOG = "Data files are .csv or .parquet (chosen by extension). Docs: README.md."

_SEP_WORDS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " "}


def _sep(text):
    from ..io._readers import check_csv_format

    sep = _SEP_WORDS.get(text.lower(), text) if len(text) > 1 else text
    try:
        check_csv_format(sep, "," if sep == "." else ".")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sep must be one character (e.g. ';' or '|') or one of tab, comma, semicolon, "
            f"space; got {text!r}") from None
    return sep


def _csv_options(parser, output=False):
    """--sep and --decimal, for the commands that read (and write) CSV."""
    also = " and the CSV written" if output else ""
    parser.add_argument("--sep", type=_sep, default=",", metavar="CHAR",
                        help=f"field separator of a CSV DATA file{also}: one character, or "
                        "tab, comma, semicolon, space (default: ','); Parquet ignores it")
    parser.add_argument("--decimal", choices=[".", ","], default=".",
                        help=f"decimal mark of a CSV DATA file{also} (default: '.'; ',' needs "
                        "another --sep, usually ';')")


def build_parser():
    from .. import __version__

    p = _Parser(
        prog="softmaxkit",
        description="Softmax regression from the shell: train, predict, evaluate and inspect "
        "models, or run the demo.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"softmaxkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser(
        "demo",
        help="train on the bundled digits data, print a report, write 5 plots",
        description="Train SoftmaxRegression on scikit-learn's bundled digits data (no "
        "download), calibrate it with temperature scaling, print a report and write five PNG "
        "plots: loss curve, confusion matrix, reliability diagram, softmax vs temperature, "
        "softmax Jacobian.",
    )
    d.add_argument("--out", metavar="DIR", default="softmaxkit-demo",
                   help="directory for the PNG plots (default: ./softmaxkit-demo)")
    d.add_argument("--seed", type=_int_type("--seed", 0, SEED_MAX), default=0,
                   help="random seed of the train/test split, 0 to 2**32-1 (default: 0)")
    # private: fewer samples, for fast tests
    d.add_argument("--n-samples", type=_int_type("--n-samples", 50), default=None,
                   help=argparse.SUPPRESS)

    f = sub.add_parser(
        "fit",
        help="train a model on a CSV/Parquet file and write it",
        description="Train SoftmaxRegression on DATA, print metrics on a held-out split and "
        "write the model file. Features must be numeric; labels may be strings or integers.",
        epilog=EPILOG,
    )
    f.add_argument("data", metavar="DATA", help="training data (.csv or .parquet)")
    f.add_argument("--target", required=True, metavar="COL", help="the label column")
    f.add_argument("--model", metavar="PATH", default="model.skm",
                   help="where to write the model, a .skm file (default: model.skm); never "
                   "DATA itself nor a .csv/.parquet path")
    f.add_argument("--features", type=_columns, metavar="COL,COL...",
                   help="feature columns (default: every column but the target)")
    f.add_argument("--penalty", choices=["l2", "l1", "elasticnet", "none"], default="l2",
                   help="penalty (default: l2)")
    f.add_argument("--C", dest="C", type=_float_type("--C", low=0, low_open=True), default=1.0,
                   metavar="F", help="inverse regularisation strength, > 0 (default: 1.0)")
    f.add_argument("--l1-ratio", type=_float_type("--l1-ratio", low=0, high=1), default=None,
                   metavar="F", help="elasticnet mixing in [0, 1] (required with "
                   "--penalty elasticnet)")
    f.add_argument("--solver", choices=SOLVERS, default="auto",
                   help="SoftmaxRegression's solver (default: auto, which picks one; l1 and "
                   "elasticnet need auto or prox-newton)")
    f.add_argument("--class-weight", choices=["balanced"], default=None,
                   help="reweight classes inversely to their frequency")
    f.add_argument("--max-iter", type=_int_type("--max-iter", 1), default=None, metavar="N",
                   help="maximum solver iterations (default: the estimator's)")
    f.add_argument("--test-size", type=_float_type("--test-size", low=0, high=1, high_open=True),
                   default=0.25, metavar="F",
                   help="held-out fraction in [0, 1) for the reported metrics (default: 0.25)")
    f.add_argument("--calibrate", action="store_true",
                   help="fit a temperature (temperature scaling) on 20%% of the training split "
                   "and store it in the model")
    f.add_argument("--seed", type=_int_type("--seed", 0, SEED_MAX), default=0,
                   help="random seed of the splits, 0 to 2**32-1 (default: 0)")
    _csv_options(f)
    # --- Dask engine (issue #7; softmaxkit.distributed) ---
    f.add_argument("--engine", choices=["memory", "dask"], default="memory",
                   help="'dask': DATA may be a directory or glob of Parquet files, trained "
                   "out of core on Dask (default: memory)")
    f.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="with --engine dask: the address of a running Dask scheduler, e.g. "
                   "tcp://host:8786 (default: Dask's local scheduler in this process)")
    # --- end Dask engine ---

    pr = sub.add_parser(
        "predict",
        help="predict labels (and probabilities) for a CSV/Parquet file",
        description="Predict with a model file. Output: one row per input row, class "
        "probabilities (with --proba) then the predicted label in the last column.",
        epilog=EPILOG,
    )
    pr.add_argument("model", metavar="MODEL", help="model file written by 'softmaxkit fit'")
    pr.add_argument("data", metavar="DATA", help="input data (.csv or .parquet)")
    pr.add_argument("--output", "-o", metavar="PATH",
                    help="write .csv or .parquet (by extension) instead of CSV on stdout; "
                    "never DATA or MODEL itself")
    pr.add_argument("--proba", action="store_true",
                    help="also write the class probabilities (columns proba_<class>)")
    _csv_options(pr, output=True)

    e = sub.add_parser(
        "evaluate",
        help="score a model on labelled data",
        description="Accuracy, log-loss, ECE, per-class precision/recall and the confusion "
        "matrix of a model on labelled DATA.",
        epilog=EPILOG,
    )
    e.add_argument("model", metavar="MODEL", help="model file")
    e.add_argument("data", metavar="DATA", help="labelled data (.csv or .parquet)")
    e.add_argument("--target", required=True, metavar="COL", help="the label column")
    e.add_argument("--plots", metavar="DIR",
                   help="also write confusion-matrix, reliability and loss-curve PNGs to DIR")
    _csv_options(e)

    i = sub.add_parser(
        "inspect",
        help="describe a model file",
        description="Show what a model file holds: estimator, classes, features, penalty, "
        "training data and metrics, temperature, and the largest weights per class.",
    )
    i.add_argument("model", metavar="MODEL", help="model file")
    i.add_argument("--top", type=_int_type("--top", 1), default=3, metavar="N",
                   help="weights shown per class (default: 3)")
    return p
