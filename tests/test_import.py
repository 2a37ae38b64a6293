"""``import softmaxkit`` stays light: no optional or heavy dependency."""

import subprocess
import sys

FORBIDDEN = ["numba", "sklearn", "matplotlib", "pandas", "pyarrow", "dask", "torch"]


def _run(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_loads_no_optional_dependency():
    code = (
        "import sys, softmaxkit\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    assert _run(code).strip() == ""


def test_public_primitives_work_after_import():
    code = (
        "import sys, softmaxkit as smk\n"
        "print(round(float(smk.softmax([3.0, 1.0, -3.0])[0]), 4))\n"
        "print(round(float(smk.sigmoid(2.0)), 4))\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    lines = _run(code).splitlines()
    assert lines[0] == "0.8789"  # e^3 / (e^3 + e + e^-3)
    assert lines[1] == "0.8808"
    assert lines[2] == ""  # still nothing heavy after using the primitives


def test_all_names_resolve():
    import softmaxkit

    for name in softmaxkit.special.__all__:
        assert callable(getattr(softmaxkit, name))
        assert name in softmaxkit.__all__
