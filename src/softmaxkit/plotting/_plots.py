"""Plot functions on plain arrays.  Each takes an optional Matplotlib ``ax``
and returns the Axes it drew on; without ``ax`` a new figure is made (with
pyplot when the caller already uses pyplot, e.g. in a notebook, otherwise
a bare ``matplotlib.figure.Figure`` that needs no GUI backend)."""

from __future__ import annotations

import sys

import numpy as np

__all__ = [
    "plot_loss_curve",
    "plot_confusion_matrix",
    "plot_reliability_diagram",
    "plot_softmax_temperature",
    "plot_softmax_jacobian",
]


def _new_axes(ax, figsize):
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - matplotlib is installed in the test env
        raise ImportError("plotting needs matplotlib: pip install 'softmaxkit[plot]'") from None
    if ax is not None:
        return ax
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _heatmap_aspect(ax):
    """The ``imshow`` aspect of a heatmap with a colour bar: "auto" on a figure
    made here (sized for about square cells), whose constrained layout then
    keeps every label inside the figure (with a fixed aspect it can push the
    y-axis title past the left edge); None (square cells) on the caller's Axes."""
    return "auto" if ax is None else None


def _names(class_names, k):
    if class_names is None:
        return [str(i) for i in range(k)]
    names = [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} entries for {k} classes.")
    return names


def _logits_1d(logits):
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 1 or z.size < 2:
        raise ValueError(f"logits must be a 1-D array of at least 2 values; got shape {z.shape}.")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits must be finite.")
    return z


def plot_loss_curve(loss_curve, *, ax=None, label=None, ylabel="training objective", start=0):
    """Plot the training objective per solver iteration.

    Parameters
    ----------
    loss_curve : array-like of shape (n_iter,)
        Objective values, e.g. ``SoftmaxRegression.loss_curve_``
        (C * sum of cross-entropies + penalty, in nats).
    ax : matplotlib Axes, optional
    label : str, optional
        Legend label (a legend is drawn when given).
    ylabel : str, default "training objective"
        The y-axis label (say what the objective is and its unit).
    start : int, default 0
        Iteration number of the first value (``SoftmaxRegression.loss_curve_``
        starts with the objective at the initial point, iteration 0).

    Returns
    -------
    ax : matplotlib Axes

    Notes
    -----
    The y-axis is logarithmic when the curve spans more than a factor of 20,
    so that late, small improvements stay visible.

    Examples
    --------
    >>> from softmaxkit.plotting import plot_loss_curve
    >>> ax = plot_loss_curve([2.3, 1.1, 0.7, 0.5, 0.45])
    >>> ax.get_xlabel()
    'iteration'
    """
    y = np.asarray(loss_curve, dtype=np.float64).ravel()
    if y.size == 0:
        raise ValueError("loss_curve is empty.")
    ax = _new_axes(ax, (6, 4))
    it = np.arange(start, start + y.size)
    ax.plot(it, y, marker="o" if y.size <= 30 else None, markersize=3, label=label)
    pos = y[np.isfinite(y) & (y > 0)]
    if pos.size == y.size and pos.max() / pos.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(f"Training objective per iteration (final {y[-1]:.4g})")
    ax.grid(True, alpha=0.3)
    if label is not None:
        ax.legend()
    return ax


def plot_confusion_matrix(y_true, y_pred, *, labels=None, ax=None, title=None):
    """Plot a confusion matrix: counts in each cell, colour = fraction of the
    true class (row-normalised), with a colour bar.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like of shape (n_classes,), optional
        The classes, in display order (default: sorted union of both).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes

    Notes
    -----
    Cell (i, j) counts samples of true class i predicted as class j; the
    colour is that count divided by the row total (the recall on the
    diagonal).  Computed with ``sklearn.metrics.confusion_matrix``.

    Examples
    --------
    >>> from softmaxkit.plotting import plot_confusion_matrix
    >>> ax = plot_confusion_matrix(["a", "b", "b"], ["a", "b", "a"])
    >>> ax.get_ylabel()
    'true label'
    """
    from sklearn.metrics import confusion_matrix

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    labels = np.asarray(labels)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    k = cm.shape[0]
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    aspect = _heatmap_aspect(ax)
    ax = _new_axes(ax, (max(4.5, 0.55 * k + 2.5), max(4.0, 0.55 * k + 1.5)))
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, aspect=aspect)
    cbar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of true class")
    names = [str(v) for v in labels]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(k), names)
    fontsize = 10 if k <= 10 else max(5, 10 - (k - 10) // 3)
    for i in range(k):
        for j in range(k):
            if cm[i, j] or i == j:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=fontsize,
                        color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(title or f"Confusion matrix (n={cm.sum()}, accuracy {acc:.3f})")
    return ax


def _reliability(y, proba, n_bins):
    from ..metrics import reliability_curve

    return reliability_curve(y, proba, n_bins=n_bins)


def plot_reliability_diagram(y, proba, *, n_bins=15, ax=None, label=None, title=None):
    """Plot a reliability diagram: accuracy against confidence per bin.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class indices into the columns of ``proba`` (ints in [0, K)).
    proba : array-like of shape (n_samples, K)
        Predicted probabilities.
    n_bins : int, default 15
        Equal-width confidence bins on [0, 1].
    ax : matplotlib Axes, optional
        Draw onto it, e.g. to overlay a calibrated and an uncalibrated model.
    label : str, optional
        Legend label of this curve (the legend also shows the ECE).
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes

    Notes
    -----
    Uses ``softmaxkit.metrics.reliability_curve``: confidence is the largest
    predicted probability; for each bin the mean confidence and the fraction
    of correct predictions are plotted (empty bins are skipped), marker area
    proportional to the bin's sample count.  A perfectly calibrated model lies
    on the diagonal.  The legend gives the expected calibration error
    ECE = sum_b (n_b / n) |accuracy_b - confidence_b|.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.plotting import plot_reliability_diagram
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> ax = plot_reliability_diagram([0, 1, 1, 1], p, n_bins=5)
    >>> ax.get_xlabel()
    'confidence (max predicted probability)'
    """
    proba = np.asarray(proba)  # validated (in its own precision) by reliability_curve
    y = np.asarray(y)
    conf, acc, counts = (np.asarray(a) for a in _reliability(y, proba, n_bins))
    counts = counts.astype(float)
    ok = counts > 0
    ece = float(np.sum(counts[ok] / counts.sum() * np.abs(acc[ok] - conf[ok])))
    ax = _new_axes(ax, (5.5, 5))
    if not getattr(ax, "_softmaxkit_diagonal", False):
        ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=1, label="perfectly calibrated")
        ax._softmaxkit_diagonal = True
    text = f"ECE {ece:.3f}" if label is None else f"{label} (ECE {ece:.3f})"
    sizes = 15 + 200 * counts[ok] / counts.max()
    line = ax.plot(conf[ok], acc[ok], marker=None, lw=1.5, label=text)[0]
    ax.scatter(conf[ok], acc[ok], s=sizes, color=line.get_color(), alpha=0.7, zorder=3)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("confidence (max predicted probability)")
    ax.set_ylabel("accuracy in bin")
    ax.set_title(title or f"Reliability diagram ({n_bins} bins; marker area ~ bin count)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=9, frameon=False)
    return ax


def plot_softmax_temperature(logits, *, temperatures=None, class_names=None, ax=None,
                             mark=None, mark_label="marked"):
    """Plot softmax(logits / T) against the temperature T for one input.

    Parameters
    ----------
    logits : array-like of shape (K,)
        One sample's logits.
    temperatures : array-like of shape (m,), optional
        Temperatures (> 0) to evaluate; default 200 values log-spaced on
        [0.05, 50].
    class_names : sequence of str, optional
        Legend names of the K classes.
    ax : matplotlib Axes, optional
    mark : float, optional
        A temperature to mark with a vertical line (e.g. a fitted one); T = 1
        is always marked.
    mark_label : str, default "marked"
        Legend text of the ``mark`` line ("<mark_label> T = ...").

    Returns
    -------
    ax : matplotlib Axes

    Notes
    -----
    p_i(T) = exp(z_i / T) / sum_j exp(z_j / T), the Boltzmann distribution at
    temperature T with energies -z.  As T -> 0 it tends to one-hot on the
    largest logit (argmax); as T -> inf to the uniform 1/K (dotted line).

    Examples
    --------
    >>> from softmaxkit.plotting import plot_softmax_temperature
    >>> ax = plot_softmax_temperature([2.0, 1.0, 0.1], class_names=["a", "b", "c"])
    >>> ax.get_xscale()
    'log'
    """
    from ..special import softmax

    z = _logits_1d(logits)
    k = z.size
    names = _names(class_names, k)
    if temperatures is None:
        temperatures = np.geomspace(0.05, 50.0, 200)
    t = np.asarray(temperatures, dtype=np.float64).ravel()
    if t.size == 0 or not np.all(np.isfinite(t) & (t > 0)):
        raise ValueError("temperatures must be finite and > 0.")
    t = np.sort(t)
    p = softmax(z[None, :] / t[:, None], axis=-1)
    ax = _new_axes(ax, (7, 4.5))
    order = np.argsort(-z)
    cmap = _class_colors(k)
    for i in order:
        ax.plot(t, p[:, i], color=cmap[i], lw=2 if i == order[0] else 1.2,
                label=f"{names[i]} (z={z[i]:.2f})")
    ax.axhline(1.0 / k, color="gray", ls=":", lw=1, label=f"uniform 1/K = {1 / k:.2f}")
    ax.axvline(1.0, color="black", ls="--", lw=0.8, label="T = 1")
    if mark is not None:
        ax.axvline(float(mark), color="tab:red", ls="--", lw=1.0,
                   label=f"{mark_label} T = {float(mark):.3g}")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("temperature T (log scale)")
    ax.set_ylabel("softmax(z / T) probability")
    ax.set_title("Softmax vs temperature for one input: argmax as T → 0, uniform as T → ∞",
                 fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(title="class (logit)", fontsize=8, title_fontsize=8, loc="center left",
              bbox_to_anchor=(1.01, 0.5))
    return ax


def _class_colors(k):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def plot_softmax_jacobian(logits, *, temperature=1.0, class_names=None, ax=None):
    """Plot the softmax Jacobian of one sample as a heatmap.

    Parameters
    ----------
    logits : array-like of shape (K,)
        One sample's logits z.
    temperature : float, default 1.0
        The Jacobian of S = softmax(z / T) with respect to z.
    class_names : sequence of str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Notes
    -----
    J_ij = dS_i / dz_j = S_i (delta_ij - S_j) / T.  J is symmetric, its rows
    and columns sum to 0, the diagonal is positive and the off-diagonal
    negative.  Drawn with a diverging colour map centred on 0.

    Examples
    --------
    >>> from softmaxkit.plotting import plot_softmax_jacobian
    >>> ax = plot_softmax_jacobian([2.0, 1.0, 0.1])
    >>> ax.get_xlabel()
    'logit $z_j$'
    """
    from .._validation import check_temperature
    from ..special import softmax

    z = _logits_1d(logits)
    t = check_temperature(temperature, "plot_softmax_jacobian")
    k = z.size
    names = _names(class_names, k)
    s = softmax(z, temperature=t)
    jac = (np.diag(s) - np.outer(s, s)) / t
    vmax = float(np.max(np.abs(jac))) or 1.0
    aspect = _heatmap_aspect(ax)
    ax = _new_axes(ax, (max(5, 0.5 * k + 2.5), max(4.2, 0.5 * k + 1.5)))
    im = ax.imshow(jac, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect=aspect)
    cbar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label(r"$\partial S_i / \partial z_j$")
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    if k <= 12:
        # label only the entries that matter; tiny ones stay blank for readability
        for i in range(k):
            for j in range(k):
                if abs(jac[i, j]) >= 0.1 * vmax:
                    ax.text(j, i, f"{jac[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if abs(jac[i, j]) > 0.6 * vmax else "black")
    ax.set_xlabel(r"logit $z_j$")
    ax.set_ylabel(r"output $S_i$")
    tt = "" if t == 1.0 else f", T = {t:.3g}"
    formula = r"$J_{ij} = S_i(\delta_{ij} - S_j)$" + ("" if t == 1.0 else r"$\,/\,T$")
    ax.set_title(f"Softmax Jacobian of one sample{tt}\n{formula}; rows and columns sum to 0"
                 "\n(entries below 10% of the largest are not labelled)", fontsize=9)
    return ax
