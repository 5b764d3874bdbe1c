"""`table`: a user's CSV or Parquet file, one row per example, one column the target.

The file is read once with pyarrow (only the columns the study uses), numbers go straight to
float32, text columns are one-hot encoded with the categories of the training rows, and
missing values are an error unless `missing` says to drop the rows or impute training means.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunelab.datasets.base import FOLD_NAMES, DataSet, GeneratedData
from tunelab.datasets.files import existing_file, shown
from tunelab.datasets.registry import register
from tunelab.datasets.targets import TASK_OPTIONS, count_missing, encode_targets
from tunelab.errors import BadInputError, DataError, first_line
from tunelab_models.params import Param

MISSING_OPTIONS = ("error", "drop", "mean")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv")
# A CSV is parsed in blocks of this size; a column's type is inferred from the first block.
CSV_BLOCK_BYTES = 16 * 1024 * 1024


@register
class Table(DataSet):
    """Rows of a CSV or Parquet file; the target column is predicted from the others."""

    name = "table"
    path_params = ("path",)
    params = (
        Param("path", str, None, "a .csv or .parquet file, relative to the experiment file"),
        Param("target", str, None, "the column to predict"),
        Param("features", list, None, "the columns to predict it from (default: every other column)"),
        Param("task", str, "auto", "classification or regression (auto: from the target's values)", choices=TASK_OPTIONS),
        Param("categorical", list, None, "columns to one-hot encode (default: the text columns)"),
        Param("missing", str, "error", "rows with missing values: error, drop them, or impute training means",
              choices=MISSING_OPTIONS),
        Param("split", dict, None, "{column: NAME}: a column of train / validation / test fixing each row's split"),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        for option in ("path", "target"):
            if not params[option]:
                raise DataError(option, f"data set 'table' needs `{option}`; expected {cls._help(option)}")
        for option in ("features", "categorical"):
            value = params[option]
            if value is not None and not (value and all(isinstance(item, str) for item in value)):
                raise DataError(option, f"expected a non-empty list of column names, got {value!r}")
            # A column read twice would be two columns of one name, which the table cannot hold.
            twice = next((name for index, name in enumerate(value or []) if name in value[:index]), None)
            if twice is not None:
                raise DataError(option, f"column {twice!r} is listed twice; expected each column once")
        split = params["split"]
        if split is not None and (set(split) != {"column"} or not isinstance(split["column"], str)):
            raise DataError("split", f"expected {{column: NAME}}, got {split!r}")

    @classmethod
    def _help(cls, option: str) -> str:
        return next(p.help for p in cls.params if p.name == option)

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        path = existing_file(params["path"], "path", TABLE_SUFFIXES)
        target = params["target"]
        split_column = params["split"]["column"] if params["split"] else None
        schema = _schema(path)
        names = list(schema.names)
        for option, column in (("target", target), ("split", split_column)):
            if column is not None:
                _check_column(path, option, column, names)
        features = params["features"] or [n for n in names if n not in (target, split_column)]
        for column in features:
            _check_column(path, "features", column, names)
            if column in (target, split_column):
                raise DataError("features", f"column {column!r} of {shown(path)} is the {'target' if column == target else 'split column'}; expected it left out of features")
        declared = set(params["categorical"] or [])
        # Numbers are read as float32 from the start: a float64 copy of a large table is the
        # biggest cost of reading it.
        as_float32 = [c for c in features if c not in declared and _is_number(schema.field(c).type)]
        table = _read(path, [*features, target, *([split_column] if split_column else [])], as_float32)
        if table.num_rows == 0:
            raise DataError("path", f"{shown(path)} has no rows")
        categorical = _categorical_columns(path, table, features, params["categorical"])
        table = _handle_missing(path, table, features, target, params["missing"])
        targets = encode_targets(table[target], params["task"], f"column {target!r} of {shown(path)}")
        numeric = [column for column in features if column not in categorical]
        return GeneratedData(
            x=TableRows(table.select(features)),
            y=targets.y,
            num_outputs=targets.num_outputs,
            class_names=targets.class_names,
            fold=_folds(path, table[split_column]) if split_column else None,
            task=targets.task,
            encoder=TableEncoder(numeric, categorical, impute=params["missing"] == "mean"),
            standardize_targets=True,
            notes=(
                f"{shown(path)}: {table.num_rows} rows, {len(numeric)} numeric and {len(categorical)} categorical "
                f"feature columns{' (one-hot: ' + ', '.join(categorical) + ')' if categorical else ''}",
                targets.note,
            ),
        )


class TableRows:
    """A table's feature columns, handed to the encoder once: it lets go of them as it builds
    the float32 features, so the table and the features are not both kept whole."""

    def __init__(self, table: pa.Table) -> None:
        self._table: pa.Table | None = table

    def take(self) -> pa.Table:
        table, self._table = self._table, None
        if table is None:
            raise RuntimeError("the table's rows were already encoded")
        return table


class TableEncoder:
    """Numeric columns as float32, categorical ones one-hot with the training rows' categories
    (a category seen only in validation or test rows is all zeros), missing numbers imputed
    with training means when asked."""

    def __init__(self, numeric: list[str], categorical: list[str], impute: bool) -> None:
        self.numeric, self.categorical, self.impute = numeric, categorical, impute

    def fit_transform(self, rows: TableRows, train: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        table = rows.take()
        train_rows = pa.array(train)
        means = {}
        if self.impute:
            for column in self.numeric:
                values = _numbers(table[column].take(train_rows))
                finite = values[np.isfinite(values)]
                means[column] = float(finite.mean(dtype=np.float64)) if len(finite) else 0.0
        categories = {
            column: sorted(str(v) for v in pc.unique(_text(table[column]).take(train_rows)).to_pylist() if v is not None)
            for column in self.categorical
        }
        encoding = {"numeric": self.numeric, "categorical": categories, "impute": means}
        handed_over = TableRows(table)
        del table  # from here on, only the encoder holds the columns, and drops each when done
        return encode_table(handed_over, encoding, order), encoding


def encode_table(rows: pa.Table | TableRows, encoding: dict[str, Any], order: np.ndarray | None = None) -> np.ndarray:
    """The rows at `order` (default: all, in order) → the float32 features a model was
    trained on, with a fitted `encoding`. Given `TableRows`, each column is let go once encoded."""
    numeric, categories, means = encoding["numeric"], encoding["categorical"], encoding["impute"]
    release = isinstance(rows, TableRows)
    table = rows.take() if isinstance(rows, TableRows) else rows
    count = table.num_rows if order is None else len(order)
    width = len(numeric) + sum(len(values) for values in categories.values())
    absent = [name for name in [*numeric, *categories] if name not in table.column_names]
    if absent:
        raise BadInputError(f"no column {', '.join(map(repr, absent))} in the rows given; expected the study's feature columns "
                            f"{', '.join([*numeric, *categories])}")
    x = np.zeros((count, width), dtype=np.float32)
    columns = {name: table[name] for name in [*numeric, *categories]}
    del table, rows
    for index, column in enumerate(numeric):
        values = _numbers(columns.pop(column) if release else columns[column])
        if column in means:
            values[~np.isfinite(values)] = means[column]
        elif not np.isfinite(values).all():  # training rows never have gaps here; new rows may
            raise BadInputError(f"column {column!r} has {int((~np.isfinite(values)).sum())} missing or infinite values; "
                                "expected numbers (the study was not told to impute them: `missing: mean`)")
        x[:, index] = values if order is None else values[order]
    offset = len(numeric)
    for column, values in categories.items():
        text = columns.pop(column) if release else columns[column]
        codes = pc.index_in(_text(text), value_set=pa.array(values, pa.string())).to_numpy(zero_copy_only=False)
        codes = codes if order is None else codes[order]
        known = ~np.isnan(codes) if codes.dtype.kind == "f" else np.ones(len(codes), dtype=bool)
        x[np.flatnonzero(known), offset + codes[known].astype(np.int64)] = 1.0
        offset += len(values)
    return x


def to_arrow(rows: Any) -> pa.Table:
    """New rows for a fitted encoding: a pandas DataFrame, a pyarrow Table, or a mapping of columns."""
    if isinstance(rows, pa.Table):
        return rows
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, dict):
        return pa.table(rows)
    raise BadInputError(f"expected a pandas DataFrame of the study's columns for a table study, got {type(rows).__name__}")


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    """A numeric or true/false column as float32, nulls as NaN: never a float64 copy."""
    return pc.cast(values, pa.float32()).to_numpy(zero_copy_only=False).copy()


def _text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(values, pa.string())


def _schema(path: Path) -> pa.Schema:
    """Column names and types, from a Parquet file's footer or a CSV's first block."""
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        import pyarrow.csv as pacsv

        with pacsv.open_csv(path, parse_options=_csv_parse_options(path)) as reader:
            return reader.schema
    except (pa.ArrowException, OSError) as exc:
        raise DataError("path", f"cannot read {shown(path)}: {first_line(exc)}") from None


def _read(path: Path, columns: list[str], as_float32: list[str]) -> pa.Table:
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            # Column by column: only one column is ever held in its stored (float64) width.
            source = pq.ParquetFile(path)
            read = {}
            for column in columns:
                values = source.read(columns=[column]).column(0)
                read[column] = pc.cast(values, pa.float32()) if column in as_float32 else values
            return pa.table(read)
        import pyarrow.csv as pacsv

        # Streamed block by block: read_csv holds several copies of the text while parsing
        # (2.8 GB for a 1 GB file here, against 1.05 GB streamed).
        with pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=_csv_parse_options(path),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns, strings_can_be_null=True,
                column_types={column: pa.float32() for column in as_float32},
            ),
        ) as reader:
            return reader.read_all()
    except (pa.ArrowException, OSError) as exc:
        raise DataError("path", f"cannot read {shown(path)}: {first_line(exc)}") from None


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _csv_parse_options(path: Path) -> Any:
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")


def _check_column(path: Path, option: str, column: Any, names: list[str]) -> None:
    if column in names:
        return
    close = difflib.get_close_matches(str(column), names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
    raise DataError(option, f"no column {column!r} in {shown(path)}{hint}; expected one of {listed}")


def _categorical_columns(path: Path, table: pa.Table, features: list[str], declared: list[str] | None) -> list[str]:
    if declared is not None:
        for column in declared:
            if column not in features:
                raise DataError("categorical", f"column {column!r} is not among the features of {shown(path)}; expected one of {', '.join(features)}")
    chosen = list(declared) if declared is not None else [c for c in features if _is_text(table[c].type)]
    for column in features:
        kind = table[column].type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        if column not in chosen and not numeric:
            raise DataError(
                "categorical",
                f"column {column!r} of {shown(path)} holds {kind} values, not numbers; expected it listed in "
                "dataset.categorical (one-hot) or left out of dataset.features",
            )
    return chosen


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind)


def _handle_missing(path: Path, table: pa.Table, features: list[str], target: str, missing: str) -> pa.Table:
    target_missing = count_missing(table[target])
    if target_missing and missing != "drop":
        raise DataError(
            "missing",
            f"target column {target!r} of {shown(path)} has {target_missing} rows without a value; "
            "expected `missing: drop` (a target is never imputed)",
        )
    gaps = {column: count_missing(table[column]) for column in features}
    gaps = {column: count for column, count in gaps.items() if count}
    if not gaps and not target_missing:
        return table
    if missing == "error":
        listed = ", ".join(f"{column} ({count} row{'' if count == 1 else 's'})" for column, count in gaps.items())
        raise DataError(
            "missing",
            f"{shown(path)} has missing or infinite values in {listed}; expected none, or `missing: drop` "
            "(drop those rows) or `missing: mean` (impute training means)",
        )
    if missing == "mean":
        return table
    keep = None
    for column in [*gaps, target]:
        values = table[column]
        present = pc.is_valid(values)
        if pa.types.is_floating(values.type):
            present = pc.and_(present, pc.fill_null(pc.is_finite(values), False))
        keep = present if keep is None else pc.and_(keep, present)
    kept = table.filter(keep)
    if kept.num_rows == 0:
        raise DataError("missing", f"every row of {shown(path)} has a missing value; expected some complete rows")
    return kept


def _folds(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    values = _text(column)
    codes = pc.index_in(values, value_set=pa.array(FOLD_NAMES)).to_numpy(zero_copy_only=False)
    unknown = np.isnan(codes) if codes.dtype.kind == "f" else np.zeros(len(codes), dtype=bool)
    if unknown.any():
        examples = sorted({str(v) for v in pc.filter(values, pa.array(unknown)).to_pylist()})[:3]
        raise DataError(
            "split",
            f"split column of {shown(path)} has {int(unknown.sum())} rows with other values ({', '.join(examples)}); "
            f"expected one of {', '.join(FOLD_NAMES)}",
        )
    folds = codes.astype(np.int8)
    if not (folds == 0).any():
        raise DataError("split", f"split column of {shown(path)} marks no row 'train'; expected some training rows")
    return folds
