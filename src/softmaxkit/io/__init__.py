"""Model files and dataset readers.

Model file format (``softmaxkit-model``, version 1)
---------------------------------------------------
A model file (the CLI uses the extension ``.skm``) is a zip container with
two members:

``metadata.json``
    UTF-8 JSON with these keys:

    - ``format``: always ``"softmaxkit-model"``; ``format_version``: an int
      (this softmaxkit writes and reads version 1; a larger number is refused
      with an "upgrade softmaxkit" error);
    - ``softmaxkit_version``, ``created_utc``;
    - ``estimator``: one of ``SoftmaxRegression``, ``OneVsRestLogistic``,
      ``TemperatureScaler`` -- a key into a fixed whitelist, never a class
      path that gets imported;
    - ``params``: the estimator's ``get_params()``; non-JSON values are
      tagged: ``{"$float": "inf"}``, ``{"$tuple": [...]}``,
      ``{"$dict": [[key, value], ...]}`` (keeps integer dict keys);
    - ``classes``, ``n_features``, ``feature_names``, ``coef_dtype``: a
      readable copy of the fitted state (the arrays are authoritative);
    - ``temperature``: the temperature ``T`` from temperature scaling (a
      finite number > 0, only for a SoftmaxRegression), or null.  The
      command line applies it (``predict``, ``evaluate``); a model from
      ``load_model`` does not (its ``predict_proba`` is uncalibrated).  For
      any number of classes the calibrated probabilities are
      ``softmaxkit.softmax(model.predict_log_proba(X), axis=1,
      temperature=T)``, i.e. the softmax of the logits over ``T``
      (``decision_function`` is the 1-D margin for two classes);
    - ``metadata``: free-form JSON supplied by the writer (the CLI stores the
      training data shape, feature dtypes, target column and held-out
      metrics there);
    - ``arrays``: the manifest, ``{name: {"kind", "dtype", "shape"}}`` for
      each array in ``arrays.npz``; ``kind`` says how an array becomes the
      attribute again (``"int"``/``"float"``/``"bool"`` scalars,
      ``"array"``, ``"object-str"`` for an object array of strings, or
      ``"optimizer"`` for the partial_fit state below);
    - ``optimizer`` (only for a SoftmaxRegression trained with
      ``partial_fit``): the state of its minibatch Adam, so that the next
      ``partial_fit`` of the loaded model continues exactly as the saved
      one would have: ``kind`` (``"Adam"``), ``method``, ``learning_rate``,
      ``beta1``, ``beta2``, ``eps``, ``decay``, ``t`` (updates so far),
      ``passes``, and ``rng`` (the MT19937 shuffling state's ``pos``,
      ``has_gauss``, ``cached_gaussian``); its arrays are ``_optimizer_x``
      (the coefficient vector), ``_optimizer_m``, ``_optimizer_v`` (Adam's
      moments) and ``_optimizer_rng_key`` (624 uint32);
    - ``arrays_sha256``: SHA-256 over the arrays, each contributing its name,
      dtype string, shape and C-order bytes, in name order;
    - ``metadata_sha256``: SHA-256 over the canonical JSON (sorted keys, no
      spaces, ASCII) of every other key.

``arrays.npz``
    ``numpy.savez`` of the fitted attributes of contract 5 (for
    SoftmaxRegression: ``coef_`` (K, d), ``intercept_`` (K,), ``classes_``
    (K,), ``n_features_in_``, ``n_iter_``, ``loss_curve_``, optionally
    ``feature_names_in_``).  String labels and names are fixed-width unicode
    arrays; it is read with ``allow_pickle=False``, so no object array (and
    no pickle) can ever be loaded.  Fixed-width unicode cannot hold a
    trailing NUL character, so a label or name ending in ``'\\x00'`` is
    refused at save time rather than stored as a different string.

The arrays of one file may take at most 2 GiB uncompressed: ``save_model``
refuses a larger model, and ``load_model`` refuses a file whose manifest
declares more, before reading ``arrays.npz``.

Files are written atomically: to a temporary file in the destination's
directory, then ``os.replace`` (an error about a missing or unwritable
directory names the destination, not the temporary file). Loading checks, in
order: the zip signature (foreign file), the container (truncated file),
``format`` and ``format_version`` (``metadata.json`` is at most 16 MiB of
strict JSON: no NaN or infinite numbers), the metadata digest, the estimator
whitelist, the manifest (only the estimator's own fitted attributes and the
optimiser arrays above, known kinds, plain numeric or unicode dtypes, at most
2-D, the size cap), the size of ``arrays.npz`` and of each ``.npy`` header
against the manifest (before the data is read; members stored uncompressed,
as written), the array digest (tampered file), the fitted state (shapes agree
with ``coef_``, unique ``classes_``, real finite ``coef_`` and
``intercept_``, valid ``TemperatureScaler`` attributes), the metadata fields
above against the arrays (``temperature``, ``classes``, ``n_features``,
``feature_names``, ``coef_dtype``), and the parameters, with the estimator's
own validation. Each failure, including anything unexpected while reading
the container, is a :class:`ModelFileError` naming the file and the problem;
``save_model`` runs the same checks on the fitted state and parameters, so it
never writes a file that ``load_model`` refuses.
"""

from ._atomic import atomic_path
from ._model_file import FORMAT_NAME, FORMAT_VERSION, ModelFileError, load_model, save_model
from ._readers import SUPPORTED_EXTENSIONS, DataError, Table, read_frame, read_table

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "save_model",
    "load_model",
    "DataError",
    "Table",
    "read_table",
    "read_frame",
    "atomic_path",
    "SUPPORTED_EXTENSIONS",
]
