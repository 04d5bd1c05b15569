"""The UCI "adult" census data, prepared exactly as alibi's `fetch_adult()` prepares it.

Parses the raw file (no header, fields separated by ', ') without alibi or the network:
drops fnlwgt and Education-Num, target = (Target == '>50K'), applies the four value maps of
../shared/docs/adult-maps.md, label-encodes every text column with its sorted distinct values
and returns `category_map[column index] = those values`. Unlike fetch_adult it checks every
line and raises DataError naming the file and the 1-based line when one is malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from runtime.errors import DataError

RAW_COLUMNS = (
    "Age", "Workclass", "fnlwgt", "Education", "Education-Num", "Marital Status", "Occupation",
    "Relationship", "Race", "Sex", "Capital Gain", "Capital Loss", "Hours per week", "Country", "Target",
)
DROPPED = ("fnlwgt", "Education-Num")
FEATURE_NAMES = tuple(c for c in RAW_COLUMNS if c not in DROPPED and c != "Target")
#: Raw columns the UCI description gives as continuous (integers in the file).
NUMERIC = frozenset({"Age", "fnlwgt", "Education-Num", "Capital Gain", "Capital Loss", "Hours per week"})
TARGET_NAMES = ("<=50K", ">50K")
SEPARATOR = ", "

EDUCATION_MAP = {
    "10th": "Dropout", "11th": "Dropout", "12th": "Dropout", "1st-4th": "Dropout", "5th-6th": "Dropout",
    "7th-8th": "Dropout", "9th": "Dropout", "Preschool": "Dropout", "HS-grad": "High School grad",
    "Some-college": "High School grad", "Masters": "Masters", "Prof-school": "Prof-School",
    "Assoc-acdm": "Associates", "Assoc-voc": "Associates",
}
OCCUPATION_MAP = {
    "Adm-clerical": "Admin", "Armed-Forces": "Military", "Craft-repair": "Blue-Collar",
    "Exec-managerial": "White-Collar", "Farming-fishing": "Blue-Collar", "Handlers-cleaners": "Blue-Collar",
    "Machine-op-inspct": "Blue-Collar", "Other-service": "Service", "Priv-house-serv": "Service",
    "Prof-specialty": "Professional", "Protective-serv": "Other", "Sales": "Sales", "Tech-support": "Other",
    "Transport-moving": "Blue-Collar",
}
COUNTRY_MAP = {
    "Cambodia": "SE-Asia", "Canada": "British-Commonwealth", "China": "China", "Columbia": "South-America",
    "Cuba": "Other", "Dominican-Republic": "Latin-America", "Ecuador": "South-America",
    "El-Salvador": "South-America", "England": "British-Commonwealth", "France": "Euro_1", "Germany": "Euro_1",
    "Greece": "Euro_2", "Guatemala": "Latin-America", "Haiti": "Latin-America", "Holand-Netherlands": "Euro_1",
    "Honduras": "Latin-America", "Hong": "China", "Hungary": "Euro_2", "India": "British-Commonwealth",
    "Iran": "Other", "Ireland": "British-Commonwealth", "Italy": "Euro_1", "Jamaica": "Latin-America",
    "Japan": "Other", "Laos": "SE-Asia", "Mexico": "Latin-America", "Nicaragua": "Latin-America",
    "Outlying-US(Guam-USVI-etc)": "Latin-America", "Peru": "South-America", "Philippines": "SE-Asia",
    "Poland": "Euro_2", "Portugal": "Euro_2", "Puerto-Rico": "Latin-America", "Scotland": "British-Commonwealth",
    "South": "Euro_2", "Taiwan": "China", "Thailand": "SE-Asia", "Trinadad&Tobago": "Latin-America",
    "United-States": "United-States", "Vietnam": "SE-Asia",
}
MARRIED_MAP = {
    "Never-married": "Never-Married", "Married-AF-spouse": "Married", "Married-civ-spouse": "Married",
    "Married-spouse-absent": "Separated", "Separated": "Separated", "Divorced": "Separated",
    "Widowed": "Widowed",
}
VALUE_MAPS = {
    "Education": EDUCATION_MAP, "Occupation": OCCUPATION_MAP, "Country": COUNTRY_MAP,
    "Marital Status": MARRIED_MAP,
}
MISSING = "?"
#: Cells pandas.read_csv reads as NaN by default; fetch_adult then fills them with '?'.
NA_TOKENS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
_INT_RE = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Adult:
    """Prepared data: `data` (rows x 12, int64, label-encoded), `target` (int64 0/1)."""

    data: np.ndarray
    target: np.ndarray
    feature_names: tuple[str, ...]
    category_map: dict[int, list[str]]

    @property
    def categorical(self) -> list[int]:
        return list(self.category_map)

    @property
    def ordinal(self) -> list[int]:
        return [i for i in range(len(self.feature_names)) if i not in self.category_map]


def parse_adult(text: str, source: str) -> Adult:
    """Prepare the raw adult.data text as fetch_adult does; DataError(source, line) on bad input."""
    keep = [i for i, c in enumerate(RAW_COLUMNS) if c not in DROPPED and c != "Target"]
    numeric = [i for i in keep if RAW_COLUMNS[i] in NUMERIC]
    text_cols = [i for i in keep if RAW_COLUMNS[i] not in NUMERIC]
    checked_numeric = [i for i, c in enumerate(RAW_COLUMNS) if c in NUMERIC]
    columns: list[list] = [[] for _ in RAW_COLUMNS[:-1]]
    target: list[int] = []
    n_cols = len(RAW_COLUMNS)
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue  # pandas skips blank lines
        cells = line.split(SEPARATOR)
        if len(cells) != n_cols:
            raise DataError(source, f"expected {n_cols} fields separated by {SEPARATOR!r}, found {len(cells)}", line=lineno)
        for i in checked_numeric:
            if not _INT_RE.fullmatch(cells[i]):
                raise DataError(source, f"{RAW_COLUMNS[i]}: expected an integer, got {cells[i]!r}", line=lineno)
        for i in numeric:
            columns[i].append(int(cells[i]))
        for i in text_cols:
            value = cells[i]
            columns[i].append(MISSING if value in NA_TOKENS else value)
        label = cells[-1]
        if label not in TARGET_NAMES:
            raise DataError(source, f"Target: expected one of {', '.join(TARGET_NAMES)}, got {label!r}", line=lineno)
        target.append(int(label == TARGET_NAMES[1]))
    if not target:
        raise DataError(source, "no data rows")

    out = np.empty((len(target), len(keep)), dtype=np.int64)
    category_map: dict[int, list[str]] = {}
    for j, i in enumerate(keep):
        name = RAW_COLUMNS[i]
        if i in numeric:
            try:
                out[:, j] = columns[i]
            except OverflowError:
                bad = next(n for n, v in enumerate(columns[i]) if not -(2**63) <= v < 2**63)
                raise DataError(source, f"{name}: integer out of range", line=_line_of(text, bad)) from None
            continue
        mapping = VALUE_MAPS.get(name, {})
        values = [mapping.get(v, v) for v in columns[i]]
        classes = sorted(set(values))
        index = {v: k for k, v in enumerate(classes)}
        out[:, j] = [index[v] for v in values]
        category_map[j] = classes
    return Adult(out, np.asarray(target, dtype=np.int64), FEATURE_NAMES, category_map)


def _line_of(text: str, row: int) -> int:
    """1-based line number of the row-th (0-based) non-blank line."""
    seen = -1
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.rstrip("\r").strip():
            seen += 1
            if seen == row:
                return lineno
    return lineno


def split_book(adult: Adult, seed: int, train_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The book's split: permute np.c_[data, target] with np.random.seed(seed), first train_rows
    rows train, rows train_rows+1.. test (one row skipped). Returns X_train, y_train, X_test, y_test.

    Uses a private RandomState(seed): the same permutation as seeding the global one.
    """
    rows = np.random.RandomState(seed).permutation(np.c_[adult.data, adult.target])
    data, target = rows[:, :-1], rows[:, -1]
    return data[:train_rows], target[:train_rows], data[train_rows + 1:], target[train_rows + 1:]
