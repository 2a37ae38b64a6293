"""Dataset readers: CSV and Parquet into numeric X and labels, with one-line
errors naming the file, column and 1-based data row."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmaxkit.io import DataError, read_frame, read_table


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_csv_string_labels(tmp_path):
    p = write(tmp_path, "d.csv", "a,b,label\n1,2.5,cat\n3,-4e2,dog\n0,0,cat\n")
    t = read_table(p, target="label")
    np.testing.assert_array_equal(t.X, [[1, 2.5], [3, -400], [0, 0]])
    assert t.X.dtype == np.float64
    assert t.y.dtype.kind == "U"  # fixed-width unicode, never object
    assert t.y.tolist() == ["cat", "dog", "cat"]
    assert t.feature_names == ["a", "b"]
    assert t.feature_dtypes == ["int64", "float64"]
    assert t.n_rows == 3


def test_csv_integer_labels_and_feature_order(tmp_path):
    p = write(tmp_path, "d.csv", "y,a,b,c\n0,1,2,3\n2,4,5,6\n")
    t = read_table(p, target="y", features=["c", "a"])
    assert t.y.dtype == np.int64
    assert t.y.tolist() == [0, 2]
    np.testing.assert_array_equal(t.X, [[3, 1], [6, 4]])
    assert t.feature_names == ["c", "a"]


def test_csv_labels_are_exact_text_when_not_all_distinct_numbers(tmp_path):
    # pandas' guessing would merge "1" and "01" and turn "None", "NA", "null"
    # into missing values; such labels stay the (stripped) text written
    p = write(tmp_path, "d.csv",
              "a,y\n1,1\n2,01\n3,1.0\n4,None\n5,NA\n6,null\n7, 1\n8,1\n")
    y = read_table(p, target="y").y
    assert y.dtype.kind == "U"
    assert y.tolist() == ["1", "01", "1.0", "None", "NA", "null", "1", "1"]
    assert len(np.unique(y)) == 6


def test_csv_integral_float_labels_are_int64(tmp_path):
    # what pandas writes for a float column; the previous release read 1, 3
    p = write(tmp_path, "d.csv", "a,y\n1,1.0\n2,3.0\n3,1.0\n")
    y = read_table(p, target="y").y
    assert y.dtype == np.int64 and y.tolist() == [1, 3, 1]


def test_csv_non_integral_float_labels_are_float64(tmp_path):
    p = write(tmp_path, "d.csv", "a,y\n1,0.5\n2,2\n3,1e3\n")
    y = read_table(p, target="y").y
    assert y.dtype == np.float64 and y.tolist() == [0.5, 2.0, 1000.0]


def test_csv_comma_space_separated_labels_are_ints(tmp_path):
    p = write(tmp_path, "d.csv", "a, b, y\n1, 2, 0\n3, 4, 1\n5, 6, 1\n")
    t = read_table(p, target=" y")
    assert t.y.dtype == np.int64 and t.y.tolist() == [0, 1, 1]
    t = read_table(write(tmp_path, "e.csv", "a,y\n1, cat\n2,dog \n3,\tcat\n"), target="y")
    assert t.y.tolist() == ["cat", "dog", "cat"]


@pytest.mark.parametrize("labels, kind", [
    (["1", "01", "2"], "U"),      # "1" and "01" are both 1: three string classes
    (["1", "1.0", "2"], "U"),
    (["-0", "0"], "U"),
    (["1", "2", "inf"], "U"),     # not finite
    (["1", "2", "x"], "U"),
    (["01", "02", "3"], "i"),     # distinct numbers: the previous release's ints
])
def test_csv_colliding_or_non_numeric_labels_stay_strings(tmp_path, labels, kind):
    p = write(tmp_path, "d.csv", "a,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels)))
    y = read_table(p, target="y").y
    assert y.dtype.kind == kind
    if kind == "U":
        assert y.tolist() == labels and len(np.unique(y)) == len(labels)
    else:
        assert y.tolist() == [int(v) for v in labels]


def test_csv_and_parquet_integral_float_labels_agree(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 2.0, -3.0]})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    assert "1.0" in (tmp_path / "d.csv").read_text()
    c = read_table(tmp_path / "d.csv", target="y").y
    q = read_table(tmp_path / "d.parquet", target="y").y
    assert c.dtype == q.dtype == np.int64
    np.testing.assert_array_equal(c, q)
    assert c.tolist() == [1, 2, 2, -3]


@pytest.mark.parametrize("labels", [["10", "9", "-2", "0"], ["7", "7", "123456789012345678"]])
def test_csv_integer_labels_are_int64_in_numeric_order(tmp_path, labels):
    p = write(tmp_path, "d.csv", "a,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels)))
    y = read_table(p, target="y").y
    assert y.dtype == np.int64
    assert y.tolist() == [int(v) for v in labels]
    assert np.unique(y).tolist() == sorted({int(v) for v in labels})


def test_csv_integer_labels_outside_int64_are_float64(tmp_path):
    p = write(tmp_path, "d.csv", "a,y\n1,1\n2,99999999999999999999\n")
    y = read_table(p, target="y").y
    assert y.dtype == np.float64 and y.tolist() == [1.0, 1e20]
    # two spellings that round to the same float are distinct labels
    p = write(tmp_path, "e.csv", "a,y\n1,99999999999999999999\n2,100000000000000000000\n")
    assert read_table(p, target="y").y.tolist() == ["99999999999999999999",
                                                   "100000000000000000000"]


def test_csv_text_target_keeps_missing_features_missing(tmp_path):
    # reading the target as text must not change how the features are read
    p = write(tmp_path, "d.csv", "a,b,y\n1,2,NA\n3,NA,None\n")
    with pytest.raises(DataError, match=r"column 'b', row 2 of .*missing value"):
        read_table(p, target="y")
    t = read_table(write(tmp_path, "e.csv", "a,b,y\n1.5,True,NA\n-2,False,x\n"), target="y")
    assert t.feature_dtypes == ["float64", "bool"]
    np.testing.assert_array_equal(t.X, [[1.5, 1.0], [-2.0, 0.0]])


@pytest.mark.parametrize("text, row", [("a,y\n1,u\n2,\n", 2), ('a,y\n1,""\n2,u\n', 1)])
def test_csv_empty_label_is_missing(tmp_path, text, row):
    p = write(tmp_path, "d.csv", text)
    with pytest.raises(DataError, match=rf"target column 'y', row {row} of .*missing label"):
        read_table(p, target="y")


def test_parquet_labels_keep_their_type(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "i": [3, 1, 2], "f": [1.0, 2.0, 1.0],
                       "s": ["01", "1", "None"]})
    p = tmp_path / "d.parquet"
    df.to_parquet(p)
    assert read_table(p, target="i", features=["a"]).y.dtype == np.int64
    f = read_table(p, target="f", features=["a"]).y
    assert f.dtype == np.int64 and f.tolist() == [1, 2, 1]  # integral floats -> int64
    assert read_table(p, target="s", features=["a"]).y.tolist() == ["01", "1", "None"]


def test_parquet_empty_string_label_is_missing(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"a": [1.0, 2.0], "y": ["u", ""]}).to_parquet(p)
    with pytest.raises(DataError, match=r"target column 'y', row 2 of .*missing label"):
        read_table(p, target="y")


def test_label_with_trailing_nul_is_refused(tmp_path):
    # fixed-width unicode would silently turn 'a\x00' into 'a', merging two classes
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,y\n1,a\n2,a\x00\n3,b\n")
    with pytest.raises(DataError, match=r"row 2 of .*ends with a NUL"):
        read_table(p, target="y")


def test_duplicate_column_names_are_refused(tmp_path):
    # pandas would silently rename the second 'a' to 'a.1'
    p = write(tmp_path, "d.csv", "a,a,b,y\n1,2,3,u\n4,5,6,v\n")
    with pytest.raises(DataError, match=r"more than one column named 'a'"):
        read_table(p, target="y")
    with pytest.raises(DataError, match=r"more than one column named 'a'"):
        read_frame(p)


def test_column_named_like_a_renamed_duplicate_is_fine(tmp_path):
    p = write(tmp_path, "d.csv", "a,a.1,y\n1,2,u\n")
    assert read_table(p, target="y").feature_names == ["a", "a.1"]


def test_datetime_and_timedelta_features_are_refused(tmp_path):
    df = pd.DataFrame({
        "a": [1.0, 2.0],
        "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        "zoned": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("UTC"),
        "took": pd.to_timedelta([1, 2], unit="s"),
        "y": ["u", "v"],
    })
    p = tmp_path / "d.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError, match=r"columns 'when' \(datetime64.*'zoned' .*'took' "
                                        r"\(timedelta64.*dates or durations") as info:
        read_table(p, target="y")
    assert "'a'" not in str(info.value)
    t = read_table(p, target="y", features=["a"])  # leaving them out works
    np.testing.assert_array_equal(t.X[:, 0], [1.0, 2.0])


def test_bool_features_are_numeric(tmp_path):
    p = write(tmp_path, "d.csv", "a,y\nTrue,x\nFalse,z\n")
    np.testing.assert_array_equal(read_table(p, target="y").X[:, 0], [1.0, 0.0])


def test_parquet_matches_csv(tmp_path):
    df = pd.DataFrame({"f1": [0.5, 1.5, 2.5], "f2": np.array([1, 2, 3], dtype=np.int32),
                       "label": ["a", "b", "a"]})
    pq, csv = tmp_path / "d.parquet", tmp_path / "d.csv"
    df.to_parquet(pq)
    df.to_csv(csv, index=False)
    t1, t2 = read_table(pq, target="label"), read_table(csv, target="label")
    np.testing.assert_array_equal(t1.X, t2.X)
    np.testing.assert_array_equal(t1.y, t2.y)
    assert t1.feature_dtypes[1] == "int32"


def test_target_optional_when_not_required(tmp_path):
    p = write(tmp_path, "d.csv", "a,b\n1,2\n")
    t = read_table(p, target="y", require_target=False)
    assert t.y is None and t.feature_names == ["a", "b"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("a,b,y\n1,2,u\n3,x7,v\n5,6,u\n", r"column 'b', row 2 of .*'x7' is not a number"),
        ("a,b,y\n1,2,u\n3,4,v\n5,,u\n", r"column 'b', row 3 of .*missing value"),
        ("a,b,y\n1,NaN,u\n3,4,v\n", r"column 'b', row 1 of .*missing value"),
        ("a,b,y\n1,2,u\n3,inf,v\n", r"column 'b', row 2 of .*inf is not finite"),
        ("a,b,y\n1,2,u\n3,4,\n", r"target column 'y', row 2 of .*missing label"),
        ("a,b,y\n", r"has a header but no data rows"),
        ("a,b\n1,2\n", r"target column 'y' not found in .*; columns are: 'a', 'b'"),
        # header refusals: an empty name in the middle, a trailing separator on every
        # line, and on the data lines only (pandas would take the first column as the
        # row index and shift the others)
        ("a,,y\n1,2,u\n", r"column 2 of .* has an empty header name"),
        ("a,b,y,\n1,2,x,\n3,4,y,\n", r"column 4 .*empty header name.*trailing ','"),
        ("a,b,y\n1,2,x,\n3,4,y,\n", r"data row 1 \(line 2\) of .* has more fields \(4\) "
                                     r"than the header \(3\).*trailing ','"),
    ],
)
def test_csv_errors_name_column_and_row(tmp_path, text, match):
    p = write(tmp_path, "d.csv", text)
    with pytest.raises(DataError, match=match) as info:
        read_table(p, target="y")
    assert "\n" not in str(info.value)


def test_first_bad_row_is_reported(tmp_path):
    # a missing value at row 2 comes before a non-number at row 4
    p = write(tmp_path, "d.csv", "a,y\n1,u\n,v\n3,u\nzz,v\n")
    with pytest.raises(DataError, match=r"column 'a', row 2 .*missing value"):
        read_table(p, target="y")


def test_parquet_null_feature(tmp_path):
    df = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "y": ["p", "q", "p"]})
    p = tmp_path / "d.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError, match=r"column 'a', row 2 .*missing value"):
        read_table(p, target="y")


def test_missing_feature_columns_are_listed(tmp_path):
    p = write(tmp_path, "d.csv", "a,b,y\n1,2,u\n")
    with pytest.raises(DataError, match=r"feature columns not found in .*: 'c', 'd'"):
        read_table(p, target="y", features=["a", "c", "d"])


def test_column_names_in_messages_show_spaces(tmp_path):
    # CSV header names are stripped; Parquet names are kept as stored
    df = pd.DataFrame({"a ": [1.0], " b": [2.0], "y": ["u"]})
    p = tmp_path / "d.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError, match=r"not found in .*: 'a'\.$"):
        read_table(p, target="y", features=["a"])
    with pytest.raises(DataError, match=r"columns are: 'a ', ' b', 'y'"):
        read_table(p, target="label")


def test_target_listed_as_feature(tmp_path):
    p = write(tmp_path, "d.csv", "a,b,y\n1,2,u\n")
    with pytest.raises(DataError, match="also listed as a feature"):
        read_table(p, target="y", features=["a", "y"])


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    p = write(tmp_path, "d.csv", content)
    with pytest.raises(DataError, match="is empty"):
        read_table(p, target="y")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv", target="y")


def test_unsupported_extension(tmp_path):
    p = write(tmp_path, "d.txt", "a,y\n1,2\n")
    with pytest.raises(DataError, match=r"unsupported file type '.txt'.*use .csv or .parquet"):
        read_frame(p)


def test_corrupt_parquet(tmp_path):
    p = write(tmp_path, "d.parquet", "this is not parquet")
    with pytest.raises(DataError, match="cannot read Parquet file"):
        read_frame(p)


def test_only_target_column(tmp_path):
    p = write(tmp_path, "d.csv", "y\n1\n2\n")
    with pytest.raises(DataError, match="no feature columns"):
        read_table(p, target="y")


@given(
    values=hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 4)),
                      elements=st.floats(allow_nan=False, allow_infinity=False)),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_numeric_round_trip_property(tmp_path_factory, values, fmt):
    """Any finite float table written by pandas comes back exactly (pandas is the oracle)."""
    df = pd.DataFrame(values, columns=[f"c{j}" for j in range(values.shape[1])])
    df["label"] = [f"k{i % 3}" for i in range(len(df))]
    p = tmp_path_factory.mktemp("rt") / f"d.{fmt}"
    df.to_csv(p, index=False) if fmt == "csv" else df.to_parquet(p)
    t = read_table(p, target="label")
    np.testing.assert_array_equal(t.X, values)
    assert t.y.tolist() == df["label"].tolist()


# ------------------------------------------------------- header rows of CSV files
def test_csv_header_names_are_stripped(tmp_path):
    # a ', '-separated file: names and labels lose their surrounding spaces
    p = write(tmp_path, "d.csv", "a , b, y\n1, 2, u\n3, 4, v\n")
    t = read_table(p, target="y")
    assert t.feature_names == ["a", "b"] and t.columns == ["a", "b", "y"]
    assert t.y.tolist() == ["u", "v"]
    np.testing.assert_array_equal(t.X, [[1.0, 2.0], [3.0, 4.0]])
    assert list(read_frame(p).columns) == ["a", "b", "y"]


def test_csv_names_equal_after_stripping_are_refused(tmp_path):
    p = write(tmp_path, "d.csv", "a, a,y\n1,2,u\n")
    with pytest.raises(DataError, match=r"more than one column named 'a'"):
        read_table(p, target="y")


def test_csv_saved_with_its_index_is_refused(tmp_path):
    # pandas' df.to_csv(path) writes the index as a first column with an empty name
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["u", "v", "u"]})
    p = tmp_path / "d.csv"
    df.to_csv(p)
    for read in (lambda: read_table(p, target="y"), lambda: read_frame(p)):
        with pytest.raises(DataError, match=r"column 1 of .*d.csv' has an empty header name"
                                            r".*row index.*index=False") as info:
            read()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, match", [
    ("__index_level_0__", r"'__index_level_0__' of .* is a row index"),
    ("Unnamed: 0", r"'Unnamed: 0' of .* row index"),
    ("", r"column 1 of .* has an empty name"),
])
def test_parquet_index_and_nameless_columns_are_refused(tmp_path, name, match):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: [0, 1], "a": [1.0, 2.0], "y": ["u", "v"]})
    p = tmp_path / "d.parquet"
    pq.write_table(table, p)
    with pytest.raises(DataError, match=match):
        read_table(p, target="y")


def test_parquet_index_stored_by_pandas_is_not_a_column(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0], "y": ["u", "v"]}, index=[10, 11])
    p = tmp_path / "d.parquet"
    df.to_parquet(p)  # the index is restored as the index, not read as a feature
    assert read_table(p, target="y").feature_names == ["a"]


@pytest.mark.parametrize("text, target", [
    ("5.1,3.5,1.4\n4.9,3.0,1.4\n", None),
    ("5.1,3.5,0\n4.9,3.0,1\n", "0"),
    ("5.1,3.5,setosa\n4.9,3.0,setosa\n6.1,2.9,virginica\n", "setosa"),
    ("1e3,-2,nan_like\n1,2,nan_like\n", "nan_like"),
])
def test_csv_without_header_is_refused(tmp_path, text, target):
    p = write(tmp_path, "d.csv", text)
    with pytest.raises(DataError, match=r"the first line looks like data, not a header "
                                        r"\(every column name is a number\); softmaxkit needs "
                                        r"a header row"):
        read_table(p, target=target, require_target=False)


def test_csv_without_header_and_unknown_target_says_so(tmp_path):
    p = write(tmp_path, "d.csv", "5.1,3.5,setosa\n4.9,3.0,setosa\n")
    with pytest.raises(DataError, match=r"target column 'species' not found.*'5.1', '3.5', "
                                        r"'setosa'.*first line looks like data"):
        read_table(p, target="species")


@pytest.mark.parametrize("header", ["0,1,2", "400,410,420", "1990,2000,2010"])
def test_csv_numbered_header_names_are_fine(tmp_path, header):
    # pandas writes 0,1,2,... for a frame without column names; wavelengths, years
    p = write(tmp_path, "d.csv", f"{header},label\n0.5,1.5,2.5,u\n3,4,5,v\n")
    t = read_table(p, target="label")
    assert t.feature_names == header.split(",")
    assert read_table(p, target="label", features=header.split(",")[:2]).X.shape == (2, 2)
    p = write(tmp_path, "e.csv", f"{header}\n0.5,1.5,2.5\n")
    assert read_table(p).feature_names == header.split(",")


def test_csv_number_names_with_a_text_target_are_fine(tmp_path):
    # the target's name is no label of its own column: a real header
    p = write(tmp_path, "d.csv", "5.1,3.5,species\n4.9,3.0,setosa\n6.1,2.9,virginica\n")
    assert read_table(p, target="species").feature_names == ["5.1", "3.5"]


@pytest.mark.parametrize("sep, row", [(";", "1;2;u"), ("\t", "1\t2\tu"),
                                      (";", "1,5;2;u")])  # decimal commas too
def test_csv_with_another_separator_gets_a_hint(tmp_path, sep, row):
    p = write(tmp_path, "d.csv", sep.join(["a", "b", "y"]) + "\n" + row + "\n")
    with pytest.raises(DataError, match=r"single column, .*separated by " + re.escape(repr(sep))
                       + r".*not ','; read it with sep=" + re.escape(repr(sep))):
        read_table(p, target="y")


@pytest.mark.parametrize("sep, decimal", [(";", ","), ("\t", "."), ("|", ","), (" ", ".")])
def test_csv_sep_and_decimal_read_like_a_comma_file(tmp_path, sep, decimal):
    rows = [["a", "b", "y"], ["1.5", "-2", "u"], ["3", "4.25", "v"], ["1e-3", "7", "u"]]
    comma = write(tmp_path, "c.csv", "\n".join(",".join(r) for r in rows) + "\n")
    other = write(tmp_path, "o.csv", "\n".join(
        sep.join(v.replace(".", decimal) for v in r) for r in rows) + "\n")
    want = read_table(comma, target="y")
    got = read_table(other, target="y", sep=sep, decimal=decimal)
    np.testing.assert_array_equal(got.X, want.X)
    np.testing.assert_array_equal(got.y, want.y)
    assert got.feature_names == want.feature_names == ["a", "b"]


def test_csv_read_with_the_wrong_sep_gets_a_hint_for_the_comma(tmp_path):
    p = write(tmp_path, "c.csv", "a,b,y\n1,2,u\n")
    with pytest.raises(DataError, match=r"separated by ',' \(comma\), not ';'; read it with "
                                        r"sep=','"):
        read_table(p, target="y", sep=";")


def test_csv_trailing_sep_names_the_sep(tmp_path):
    p = write(tmp_path, "c.csv", "a;b;y\n1;2;u;\n")
    with pytest.raises(DataError, match=r"more fields \(4\) than the header \(3\).*trailing "
                                        r"';'"):
        read_table(p, target="y", sep=";")


def test_parquet_ignores_sep_and_decimal(tmp_path):
    df = pd.DataFrame({"a": [1.5, 2.0], "y": ["u", "v"]})
    df.to_parquet(tmp_path / "d.parquet", index=False)
    t = read_table(tmp_path / "d.parquet", target="y", sep=";", decimal=",")
    np.testing.assert_array_equal(t.X[:, 0], [1.5, 2.0])


@pytest.mark.parametrize("sep, decimal, err, match", [
    ("ab", ".", ValueError, "sep must be one character"),
    ("", ".", ValueError, "sep must be one character"),
    ('"', ".", ValueError, "sep must be one character"),
    ("\n", ".", ValueError, "sep must be one character"),
    ("x", ".", ValueError, "sep must be one character"),
    (".", ",", ValueError, "sep must be one character"),
    (";", ";", ValueError, "decimal must be '.' or ','"),
    (",", ",", ValueError, "decimal and sep must differ"),
    (1, ".", TypeError, "sep must be a str"),
    (",", None, TypeError, "decimal must be a str"),
])
def test_bad_sep_or_decimal_is_refused_before_reading(tmp_path, sep, decimal, err, match):
    with pytest.raises(err, match=match):
        read_frame(tmp_path / "missing.csv", sep=sep, decimal=decimal)


def test_csv_longer_data_line_after_the_first_is_one_line(tmp_path):
    """Only the first data line was compared with the header; a later long line
    gave pandas' "Error tokenizing data. C error: ..." text."""
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,p\n3,4,q\n5,6,r,\n")
    with pytest.raises(DataError, match=r"^data row 3 \(line 4\) of .* has more fields \(4\) "
                                        r"than the header \(3\)"):
        read_table(p, target="y")


def test_csv_with_number_names_is_read_as_a_header_for_a_model(tmp_path):
    """A feature-only file whose names are all numbers (decimal wavelengths,
    descending wavenumbers) was refused at predict time as header-less although
    fit had accepted it with its text target: the model's feature names settle
    it; whole numbers in decreasing order are a header too."""
    p = tmp_path / "new.csv"
    p.write_text("400.5,401.0,401.5\n0.1,0.2,0.3\n0.4,0.5,0.6\n")
    with pytest.raises(DataError, match="looks like data"):
        read_table(p, require_target=False)
    t = read_table(p, features=["400.5", "401.0", "401.5"], require_target=False)
    assert t.X.shape == (2, 3)
    q = tmp_path / "wn.csv"
    q.write_text("4000,3998,3996\n0.1,0.2,0.3\n")
    assert read_table(q, require_target=False).X.shape == (1, 3)

