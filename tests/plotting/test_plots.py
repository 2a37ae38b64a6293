"""Plot functions: each writes a non-empty PNG, draws onto a given Axes, and
shows the numbers of an independent oracle (SciPy, scikit-learn, PyTorch)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from softmaxkit.metrics import reliability_curve
from softmaxkit.plotting import (
    plot_confusion_matrix,
    plot_loss_curve,
    plot_reliability_diagram,
    plot_softmax_jacobian,
    plot_softmax_temperature,
)

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(ax, path):
    ax.figure.savefig(path, format="png")
    raw = path.read_bytes()
    assert raw[:8] == PNG and len(raw) > 5000
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close(ax.figure)


@pytest.fixture
def probs():
    rng = np.random.default_rng(0)
    z = 3 * rng.normal(size=(400, 5))
    y = np.argmax(z / 3 + rng.gumbel(size=z.shape), axis=1)
    return z, y, scipy_softmax(z, axis=1)


def test_loss_curve(tmp_path):
    curve = 2.3 * np.exp(-np.arange(40) / 8) + 0.1
    ax = plot_loss_curve(curve, label="fit")
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), curve)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(40))
    assert ax.get_yscale() == "log"  # spans a factor > 20
    assert_png(ax, tmp_path / "loss.png")


def test_loss_curve_linear_when_flat(tmp_path):
    ax = plot_loss_curve([1.0, 0.9, 0.85])
    assert ax.get_yscale() == "linear"
    with pytest.raises(ValueError, match="empty"):
        plot_loss_curve([])
    plt.close("all")


def test_confusion_matrix_counts_match_sklearn(tmp_path):
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    labels = np.array(["cat", "dog", "emu"])
    y = labels[rng.integers(0, 3, 200)]
    yp = np.where(rng.random(200) < 0.7, y, labels[rng.integers(0, 3, 200)])
    ax = plot_confusion_matrix(y, yp, labels=labels)
    cm = confusion_matrix(y, yp, labels=labels)
    shown = {(int(round(t.get_position()[1])), int(round(t.get_position()[0]))): int(t.get_text())
             for t in ax.texts}
    for (i, j), v in shown.items():
        assert cm[i, j] == v
    assert all((i, i) in shown for i in range(3))
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image, cm / cm.sum(axis=1, keepdims=True))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(labels)
    assert_png(ax, tmp_path / "cm.png")


def test_reliability_diagram_draws_reliability_curve(tmp_path, probs):
    _, y, p = probs
    conf, acc, counts = reliability_curve(y, p, n_bins=10)
    ax = plot_reliability_diagram(y, p, n_bins=10, label="raw")
    curve = ax.get_lines()[1]
    ok = counts > 0
    np.testing.assert_allclose(curve.get_xdata(), conf[ok])
    np.testing.assert_allclose(curve.get_ydata(), acc[ok])
    from softmaxkit.metrics import expected_calibration_error

    ece = expected_calibration_error(y, p, n_bins=10)
    assert f"ECE {ece:.3f}" in curve.get_label()
    # overlay a second curve on the same axes: the diagonal is drawn once
    plot_reliability_diagram(y, scipy_softmax(np.log(p) / 3, axis=1), n_bins=10, ax=ax,
                             label="T=3")
    assert sum(line.get_label() == "perfectly calibrated" for line in ax.get_lines()) == 1
    assert_png(ax, tmp_path / "rel.png")


def test_reliability_diagram_takes_float16_softmax(probs):
    """float16 rows sum to 1 only to float16 rounding: validated in their own
    precision (they were cast to float64 first and held to its tolerance)."""
    import softmaxkit

    _, y, p = probs
    p16 = softmaxkit.softmax(np.log(p).astype(np.float16), axis=1)
    assert np.abs(p16.astype(np.float64).sum(axis=1) - 1).max() > 1e-6
    ax = plot_reliability_diagram(y, p16, n_bins=10)
    conf, acc, counts = reliability_curve(y, p16, n_bins=10)
    np.testing.assert_allclose(ax.get_lines()[1].get_xdata(), conf[counts > 0])
    plt.close(ax.figure)


def test_softmax_temperature_lines_match_scipy(tmp_path):
    z = np.array([2.0, 1.0, -0.5, 0.3])
    T = np.geomspace(0.1, 10, 25)
    fig, ax = plt.subplots()
    out = plot_softmax_temperature(z, temperatures=T, class_names=list("abcd"), ax=ax, mark=2.0)
    assert out is ax
    expected = scipy_softmax(z[None, :] / T[:, None], axis=1)
    lines = {line.get_label().split()[0]: line for line in ax.get_lines()[:4]}
    for i, name in enumerate("abcd"):
        np.testing.assert_allclose(lines[name].get_ydata(), expected[:, i], rtol=1e-12)
        np.testing.assert_allclose(lines[name].get_xdata(), T)
    assert ax.get_xscale() == "log"
    assert_png(ax, tmp_path / "temp.png")


def test_softmax_jacobian_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    z = np.array([1.5, -0.2, 0.7, 0.0, -2.0])
    T = 1.7
    jac = torch.autograd.functional.jacobian(
        lambda t: torch.softmax(t / T, dim=0), torch.tensor(z, dtype=torch.float64)
    ).numpy()
    ax = plot_softmax_jacobian(z, temperature=T, class_names=list("vwxyz"))
    np.testing.assert_allclose(ax.get_images()[0].get_array(), jac, atol=1e-15)
    lo, hi = ax.get_images()[0].get_clim()
    assert lo == -hi  # diverging map centred on 0
    assert ax.get_images()[0].colorbar is not None
    assert_png(ax, tmp_path / "jac.png")


@pytest.mark.parametrize("fn", [plot_softmax_temperature, plot_softmax_jacobian])
def test_bad_logits(fn):
    with pytest.raises(ValueError, match="1-D array of at least 2"):
        fn(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        fn([0.0, np.nan])
    with pytest.raises(ValueError, match="class_names has 2 entries for 3 classes"):
        fn([0.0, 1.0, 2.0], class_names=["a", "b"])


def test_bad_temperatures():
    with pytest.raises(ValueError, match="temperatures must be finite and > 0"):
        plot_softmax_temperature([0.0, 1.0], temperatures=[1.0, -1.0])
    with pytest.raises(ValueError, match="temperature"):
        plot_softmax_jacobian([0.0, 1.0], temperature=0.0)


def _drawn_extent(fig, dpi):
    """The extent (inches) of everything drawn on ``fig`` when saved at ``dpi``."""
    import io

    fig.savefig(io.BytesIO(), format="png", dpi=dpi)  # runs the layout at this dpi
    renderer = fig.canvas.get_renderer()
    return fig.get_tightbbox(renderer).extents


@pytest.mark.parametrize("k", [3, 12, 20])
@pytest.mark.parametrize("dpi", [100, 110])
def test_heatmaps_fit_in_their_figure(k, dpi):
    """No axis title or tick label is cut at the figure's edges (the 'true
    label' title of a 12-class confusion matrix was)."""
    rng = np.random.default_rng(0)
    names = np.array([f"c{i}" for i in range(k)])
    y = rng.integers(0, k, 4000)
    yp = np.where(rng.random(4000) < 0.85, y, rng.integers(0, k, 4000))
    axes = [plot_confusion_matrix(names[y], names[yp], labels=names),
            plot_softmax_jacobian(rng.normal(size=k), class_names=list(names))]
    for ax in axes:
        fig = ax.figure
        x0, y0, x1, y1 = _drawn_extent(fig, dpi)
        w, h = fig.get_size_inches()
        assert x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h, (ax.get_title(), x0, y0, x1, y1)
        plt.close(fig)
