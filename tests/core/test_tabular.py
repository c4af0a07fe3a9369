"""Tables as they really are, on generated files shaped like well-known ones (Titanic, Palmer penguins, adult
census): gaps written "NA", "", "?", "null"; dates in several formats; ID columns; free text; high-cardinality
categories; a target with missing entries. Column kinds and default roles, the suggested target, the
preparation fitted on the training part only (scikit-learn's SimpleImputer and OneHotEncoder) and kept as plain
JSON data, and one transformation for training, prediction rows and cross-validation folds."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import core.uploads as uploads
from core import tabular
from core.datasets import split_at, split_dataset
from core.uploads import UploadError, UploadLimits, inspect_csv, read_csv

# ---- generated tables shaped like real ones -----------------------------------------------------------

_FIRST = ["Owen", "John", "Laina", "Lily", "William", "Mary", "Thomas", "Anna", "James", "Elizabeth", "Karl",
          "Maria", "Ernst", "Hanna", "Pierre", "Jeanne"]
_LAST = ["Braund", "Cumings", "Heikkinen", "Futrelle", "Allen", "Moran", "McCarthy", "Palsson", "Johnson",
         "Nasser", "Sandstrom", "Bonnell", "Saundercock", "Andersson", "Vestrom", "Hewlett", "Rice", "Williams"]


def _csv(header: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def titanic_like(n: int = 400, seed: int = 0) -> bytes:
    """PassengerId (an ID), Survived (0/1, the target), Pclass, Name (free text), Sex, Age (gaps as ''),
    SibSp, Parch, Ticket (nearly unique), Fare, Cabin (mostly missing), Embarked (2 gaps), Boarded (a date)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sex = str(rng.choice(["male", "female"]))
        pclass = int(rng.choice([1, 2, 3], p=[0.25, 0.2, 0.55]))
        survived = int(rng.random() < (0.75 if sex == "female" else 0.2) + (0.1 if pclass == 1 else 0))
        age = "" if rng.random() < 0.2 else f"{rng.uniform(1, 70):.0f}"
        title = "Mr." if sex == "male" else str(rng.choice(["Mrs.", "Miss."]))
        name = f"{rng.choice(_LAST)}, {title} {rng.choice(_FIRST)} {rng.choice(_FIRST)}"
        ticket = f"{rng.choice(['A/5 ', 'PC ', 'STON/O2. ', ''])}{rng.integers(1000, 400000)}"
        cabin = f"{rng.choice(list('ABCDE'))}{rng.integers(1, 130)}" if rng.random() < 0.23 else ""
        embarked = "" if i in (61, 229) else str(rng.choice(["S", "C", "Q"], p=[0.7, 0.2, 0.1]))
        boarded = str(np.datetime64("1912-04-01") + int(rng.integers(0, 10)))
        rows.append([i + 1, survived, pclass, name, sex, age, int(rng.integers(0, 4)), int(rng.integers(0, 3)),
                     ticket, f"{rng.gamma(2, 15) * (4 - pclass):.4f}", cabin, embarked, boarded])
    return _csv(["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare",
                 "Cabin", "Embarked", "Boarded"], rows)


def penguins_like(n: int = 344, seed: int = 1) -> bytes:
    """rowid, species (first column: the target), island, measurements with "NA", sex with "NA", and year
    (three whole-number values, the last column: what the old suggestion wrongly picked)."""
    rng = np.random.default_rng(seed)
    species = ["Adelie", "Gentoo", "Chinstrap"]
    rows = []
    for i in range(n):
        k = int(rng.integers(0, 3))
        gap = i in (3, 271)
        values = [f"{39 + 8 * k + rng.normal(0, 2):.1f}", f"{18 - 2 * (k == 1) + rng.normal(0, 1):.1f}",
                  f"{190 + 20 * (k == 1) + rng.normal(0, 5):.0f}", f"{3700 + 1300 * (k == 1) + rng.normal(0, 300):.0f}"]
        sex = "NA" if gap or rng.random() < 0.03 else str(rng.choice(["male", "female"]))
        rows.append([i + 1, species[k], ["Torgersen", "Biscoe", "Dream"][(k + int(rng.integers(0, 2))) % 3],
                     *(["NA"] * 4 if gap else values), sex, int(rng.choice([2007, 2008, 2009]))])
    return _csv(["rowid", "species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                 "body_mass_g", "sex", "year"], rows)


def adult_like(n: int = 600, seed: int = 2) -> bytes:
    """age, workclass with '?', fnlwgt, education, native-country (42 values), comment (free text), signup
    (dd/mm/YYYY), income (the target, last, missing as 'null' in a few rows)."""
    rng = np.random.default_rng(seed)
    countries = ["United-States"] * 30 + ["Mexico", "Philippines", "Germany", "Canada"] + [
        f"Country-{i}" for i in range(37)]
    words = "the a of to and in is was for on that with as by at from this be or an".split()
    rows = []
    for i in range(n):
        rich = rng.random() < 0.25
        comment = " ".join(rng.choice(words + [f"w{j}" for j in range(300)], int(rng.integers(6, 14))))
        y, m, d = str(np.datetime64("2019-01-01") + int(rng.integers(0, 700))).split("-")
        rows.append([int(rng.integers(17, 80)) + 10 * rich,
                     "?" if rng.random() < 0.05 else str(rng.choice(["Private", "Self-emp", "Gov"])),
                     int(rng.integers(20000, 900000)), str(rng.choice(["Bachelors", "HS-grad", "Masters"])),
                     countries[int(rng.integers(0, len(countries)))], comment, f"{d}/{m}/{y}",
                     "null" if i % 97 == 5 else (">50K" if rich else "<=50K")])
    return _csv(["age", "workclass", "fnlwgt", "education", "native-country", "comment", "signup", "income"], rows)


def _kinds(info) -> dict[str, tuple[str, str]]:
    return {p.name: (p.kind, p.role) for p in info.table.profiles}


# ---- kinds, roles and the suggested target -------------------------------------------------------------

def test_a_titanic_like_table_gets_sensible_kinds_roles_and_target():
    info = inspect_csv(titanic_like(), "titanic.csv")
    kinds = _kinds(info)
    assert kinds["PassengerId"] == ("identifier", "ignore")
    assert kinds["Name"] == ("text", "ignore")
    assert kinds["Ticket"] == ("identifier", "ignore") and kinds["Cabin"] == ("identifier", "ignore")
    assert kinds["Sex"] == ("category", "feature") and kinds["Embarked"] == ("category", "feature")
    assert kinds["Age"] == ("number", "feature") and kinds["Boarded"] == ("date", "feature")
    assert info.suggested_target == "Survived" and "named like a class column" in info.target_reason
    age = info.table.profile("Age")
    assert age.n_missing > 50 and 0.1 < age.share_missing < 0.3
    assert info.table.profile("Embarked").n_missing == 2
    reasons = {p.name: p.reason for p in info.table.profiles}
    assert "identifier" in reasons["PassengerId"] and "free text" in reasons["Name"]
    assert "year, month, day of year, weekday" in reasons["Boarded"]


def test_penguins_suggest_species_not_the_year_and_na_counts_as_missing():
    info = inspect_csv(penguins_like(), "penguins.csv")
    assert info.suggested_target == "species"  # not "year" (the last column, three whole-number values)
    assert _kinds(info)["year"] == ("number", "feature") and _kinds(info)["rowid"][0] == "identifier"
    assert {p.name: p.n_missing for p in info.table.profiles}["bill_length_mm"] == 2
    ds = read_csv(penguins_like(), "penguins.csv")
    assert ds.class_names == ("Adelie", "Chinstrap", "Gentoo") and ds.n_samples == 344
    assert "sex=female" in ds.feature_names and not np.isnan(ds.x).any()


def test_adult_census_like_question_marks_free_text_many_countries_and_a_missing_target():
    info = inspect_csv(adult_like(), "adult.csv")
    kinds = _kinds(info)
    assert info.suggested_target == "income"
    assert kinds["comment"] == ("text", "ignore")  # never the target, never a feature by default
    assert kinds["signup"] == ("date", "feature") and info.table.column("signup").date_format == "%d/%m/%Y"
    assert info.table.profile("workclass").n_missing > 10  # written "?"
    assert info.table.profile("native-country").detail == "42 values (top 20 + other)"
    ds = read_csv(adult_like(), "adult.csv")
    assert ds.n_samples == 600 - 7  # the rows whose income is "null" are dropped and counted
    summary = " ".join(ds.table.summary)
    assert "7 row(s) dropped because the target 'income' is missing there (lines 7, 104, 201" in summary
    assert "native-country (top 20 of 42 values + other)" in summary
    assert "Ignored: comment (free text" in summary and "Expanded into year, month" in summary
    assert ds.input_shape == (1 + 3 + 1 + 3 + 21 + 4,)
    assert ds.feature_names[-4:] == ("signup year", "signup month", "signup day of year", "signup weekday")


def test_the_target_is_never_free_text_an_identifier_or_continuous_numbers():
    rng = np.random.default_rng(0)
    rows = [[i, f"{rng.normal():.4f}", f"note number {i} about this row, written freely", f"id-{i:05d}"]
            for i in range(60)]
    info = inspect_csv(_csv(["n", "x", "comment", "code"], rows), "none.csv")
    assert info.suggested_target == "" and "choose the target" in info.target_reason
    with pytest.raises(UploadError, match="choose the target"):
        read_csv(_csv(["n", "x", "comment", "code"], rows), "none.csv")
    with pytest.raises(UploadError, match="column 'x' cannot be the target: it holds continuous numbers"):
        read_csv(_csv(["n", "x", "comment", "code"], rows), "none.csv", "x")


def test_a_numeric_column_with_few_whole_values_can_be_the_target():
    rows = [[f"{i * 0.1:.1f}", i % 4, "abc"[i % 3]] for i in range(80)]
    info = inspect_csv(_csv(["x", "grade", "letter"], rows), "grades.csv")
    assert info.suggested_target == "letter"  # text classes first
    ds = read_csv(_csv(["x", "grade", "letter"], rows), "grades.csv", "grade")
    assert ds.class_names == ("0", "1", "2", "3") and ds.y[:5].tolist() == [0, 1, 2, 3, 0]


def test_names_that_say_class_win_and_classes_need_enough_rows():
    rows = [["a" if i % 2 else "b", "x" if i % 3 else "y", "p" if i < 39 else "q"] for i in range(40)]
    info = inspect_csv(_csv(["colour", "Outcome", "rare"], rows), "named.csv")
    assert info.suggested_target == "Outcome"
    info = inspect_csv(_csv(["colour", "shape", "rare"], rows), "plain.csv")
    assert info.suggested_target == "shape"  # "rare" is last but one class has a single row


# ---- dates ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("texts, fmt", [
    (["2021-03-04", "2020-12-31", "2019-07-15"], "%Y-%m-%d"),
    (["04/03/2021", "31/12/2020", "15/07/2019"], "%d/%m/%Y"),
    (["03/04/2021", "12/31/2020", "07/15/2019"], "%m/%d/%Y"),
    (["04.03.2021", "31.12.2020", "15.07.2019"], "%d.%m.%Y"),
    (["4 Mar 2021", "31 Dec 2020", "15 Jul 2019"], "%d %b %Y"),
    (["March 4, 2021", "December 31, 2020", "July 15, 2019"], "%B %d, %Y"),
    (["2021-03-04 13:45:00", "2020-12-31 00:00:01", "2019-07-15 23:59:59"], "%Y-%m-%d %H:%M:%S"),
])
def test_dates_in_several_formats_are_expanded(texts, fmt):
    rows = [[texts[i % 3], i % 2, f"{i}"] for i in range(30)]
    info = inspect_csv(_csv(["when", "label", "x"], rows), "dates.csv")
    col = info.table.column("when")
    assert info.table.profile("when").kind == "date" and col.date_format == fmt
    ds = read_csv(_csv(["when", "label", "x"], rows), "dates.csv", "label")
    parts = dict(zip(ds.feature_names, ds.x[0], strict=True))
    assert (parts["when year"], parts["when month"], parts["when day of year"], parts["when weekday"]) == (
        2021, 3, 63, 3)  # 4 March 2021: a Thursday


def test_absurd_years_and_unreadable_dates_count_as_missing_with_a_note():
    days = [str(np.datetime64("2020-01-01") + i) for i in range(40)]
    days[5], days[9] = "9999-12-31", "0001-01-01"  # sentinels, not dates
    rows = [[d, i % 2, i] for i, d in enumerate(days)]
    ds = read_csv(_csv(["when", "label", "x"], rows), "sentinel.csv", "label")
    assert ds.table.columns[0].kind == "date"
    assert np.isnan(ds.table.columns[0].values[[5, 9]]).all()
    assert "'when': 2 value(s) that are not dates in the format %Y-%m-%d (e.g. '9999-12-31') count as missing" \
        in " ".join(ds.table.summary)
    mostly_text = [[f"2020-01-0{i % 9 + 1}" if i < 10 else f"word{i % 7}", i % 2, i] for i in range(60)]
    assert inspect_csv(_csv(["when", "label", "x"], mostly_text), "t.csv").table.profile("when").kind != "date"


def test_the_date_role_ignore_leaves_it_out():
    rows = [[str(np.datetime64("2020-01-01") + i), i % 2, i * 0.5] for i in range(30)]
    ds = read_csv(_csv(["when", "label", "x"], rows), "d.csv", "label", roles={"when": "ignore"})
    assert ds.feature_names == ("x",) and "Ignored: when (ignored by choice)" in " ".join(ds.table.summary)


# ---- missing values: drop or impute ------------------------------------------------------------------

def test_every_missing_marker_is_recognised():
    markers = ["NA", "", "?", "null", "NaN", "n/a", "-", "N/A", "NULL", "none", "inf"]
    rows = [[m if i < len(markers) else f"{i}.5", m if i < len(markers) else "abc"[i % 3], i % 2]
            for i, m in enumerate(markers + [""] * 20)]
    rows = [[r[0] if i < len(markers) else f"{i}.5", r[1] if i < len(markers) else "abc"[i % 3], r[2]]
            for i, r in enumerate(rows)]
    info = inspect_csv(_csv(["num", "cat", "label"], rows), "gaps.csv")
    num, cat = info.table.profile("num"), info.table.profile("cat")
    assert num.kind == "number" and num.n_missing == len(markers) and num.n_infinite == 1
    assert cat.kind == "category" and cat.n_missing == len(markers) - 1 and cat.distinct == 4  # "inf" is text


def test_drop_and_impute_are_the_users_choice():
    data = titanic_like(200)
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    gaps = (frame["Age"] == "") | (frame["Embarked"] == "")  # Cabin has gaps too, but it is ignored
    imputed = read_csv(data, "t.csv")
    assert imputed.n_samples == 200 and not np.isnan(imputed.x).any()
    dropped = read_csv(data, "t.csv", missing="drop")
    assert dropped.n_samples == 200 - int(gaps.sum())
    np.testing.assert_array_equal(dropped.table.rows, np.flatnonzero(~gaps))
    assert f"{int(gaps.sum())} more row(s) dropped because a feature is missing there (Age " in " ".join(
        dropped.table.summary)


# ---- the preparation: fitted on the training part only, plain JSON data ------------------------------------

def _sklearn_reference(ds, split):
    """The training part prepared by scikit-learn itself (ColumnTransformer of SimpleImputer and OneHotEncoder,
    then standardisation with its mean/std, 0 where constant): what encode() must reproduce."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    data = ds.table
    frame = {}
    for col in data.columns:
        if col.kind == "category":
            levels = np.asarray([*col.levels, np.nan], dtype=object)
            frame[col.name] = levels[col.values]
        elif col.kind == "date":
            for j, part in enumerate(tabular.DATE_PARTS):
                frame[f"{col.name} {part}"] = col.values[:, j].astype(np.float64)
        else:
            frame[col.name] = col.values.astype(np.float64)
    frame = pd.DataFrame(frame)
    steps = []
    for col in data.columns:
        if col.kind == "category":
            steps.append((col.name, make_pipeline(
                SimpleImputer(strategy="most_frequent", missing_values=np.nan),
                OneHotEncoder(categories=[list(col.levels)], max_categories=data.top_k + 1,
                              handle_unknown="infrequent_if_exist", sparse_output=False)), [col.name]))
        else:
            names = [col.name] if col.kind == "number" else [f"{col.name} {p}" for p in tabular.DATE_PARTS]
            steps.append((col.name, SimpleImputer(strategy=data.numbers, keep_empty_features=True), names))
    transformer = ColumnTransformer(steps).fit(frame.iloc[split.train_idx])
    train = transformer.transform(frame.iloc[split.train_idx]).astype(np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    scale = np.where(std > 1e-12, 1 / np.where(std > 1e-12, std, 1), 0.0)
    return lambda rows: (transformer.transform(frame.iloc[rows]) - mean) * scale


@pytest.mark.parametrize("make", [titanic_like, penguins_like, adult_like])
def test_the_preparation_is_scikit_learns_fitted_on_the_training_part(make):
    ds = read_csv(make(), "real.csv")
    split = split_dataset(ds, seed=3)
    reference = _sklearn_reference(ds, split)
    for part, idx in (("x_train", split.train_idx), ("x_val", split.val_idx), ("x_test", split.test_idx)):
        np.testing.assert_allclose(getattr(split, part), reference(idx), rtol=1e-5, atol=1e-5)


def test_values_outside_the_training_part_change_nothing_fitted():
    data = titanic_like(300)
    ds = read_csv(data, "t.csv")
    split = split_dataset(ds, seed=0)
    prep = split.preparation
    age = next(c for c in ds.table.columns if c.name == "Age")
    train_age = age.values[split.train_idx]
    assert prep["columns"][[c["name"] for c in prep["columns"]].index("Age")]["fill"] == pytest.approx(
        float(np.nanmedian(train_age)))
    # Change every non-training row's Age: the fitted preparation stays the same.
    changed = age.values.copy()
    changed[split.test_idx] = 999.0
    changed[split.val_idx] = np.nan
    other = replace(ds.table, columns=tuple(replace(c, values=changed) if c.name == "Age" else c
                                            for c in ds.table.columns))
    assert tabular.fit_preparation(other, split.train_idx) == tabular.fit_preparation(ds.table, split.train_idx)


def test_every_cross_validation_fold_fits_its_own_preparation_with_the_same_width():
    from core.crossval import fold_splits

    ds = read_csv(adult_like(), "adult.csv")
    folds = fold_splits(ds, 3, seed=0)
    fills = set()
    for fold in folds:
        assert fold.x_train.shape[1] == ds.input_shape[0]
        assert fold.preparation == tabular.fit_preparation(ds.table, fold.train_idx)
        fills.add(tuple(fold.preparation["mean"][:3]))
        again = split_at(ds, fold.train_idx, fold.val_idx, fold.test_idx)
        np.testing.assert_array_equal(again.x_test, fold.x_test)
    assert len(fills) == 3  # three training parts, three fits


def test_a_category_the_training_part_never_saw_contributes_nothing():
    rows = [[f"{i * 0.1:.1f}", "rare" if i == 0 else "ab"[i % 2], i % 2] for i in range(60)]
    ds = read_csv(_csv(["x", "kind", "label"], rows), "r.csv", "label")
    row0 = int(np.flatnonzero(ds.table.rows == 0)[0])
    train = np.setdiff1d(np.arange(ds.n_samples), [row0])[:40]
    rest = np.setdiff1d(np.arange(ds.n_samples), train)
    split = split_at(ds, train, rest[:len(rest) // 2], rest[len(rest) // 2:])
    prep = split.preparation
    rare = prep["features"].index("kind=rare")
    assert prep["scale"][rare] == 0.0  # constant in training: no effect anywhere
    x = tabular.prepare_rows(prep, {"x": ["1.0", "1.0"], "kind": ["rare", "never-seen"]})
    np.testing.assert_array_equal(x[0], x[1])  # a rare category is like an unknown one: ignored


def test_top_k_and_other_for_many_categories_and_unknown_values_go_to_other():
    rng = np.random.default_rng(0)
    towns = [f"town{k}" for k in range(40)]
    rows = [[towns[min(int(rng.exponential(6)), 39)], f"{rng.normal():.3f}", i % 2] for i in range(500)]
    ds = read_csv(_csv(["town", "x", "label"], rows), "towns.csv", "label", top_k=5)
    prep = split_dataset(ds).preparation
    town = prep["columns"][0]
    assert len(town["categories"]) == 5 and town["other"] is True
    x = tabular.prepare_rows(prep, {"town": ["a town never seen", town["categories"][0]], "x": ["0", "0"]})
    other = prep["features"].index("town=(other)")
    assert x[0, other] > 0 > x[1, other]  # unknown -> other; a known one -> not other


def test_the_preparation_is_plain_json_and_survives_a_round_trip():
    ds = read_csv(titanic_like(), "t.csv")
    prep = split_dataset(ds).preparation
    text = json.dumps(prep, allow_nan=False)  # no NaN, no objects: nothing that needs a pickle
    back = tabular.check_preparation(json.loads(text))
    frame = pd.read_csv(io.BytesIO(titanic_like()), dtype=str, keep_default_na=False).iloc[:20]
    np.testing.assert_array_equal(tabular.prepare_rows(back, frame), tabular.prepare_rows(prep, frame))


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(format="pickle"), "not one Keras Lab wrote"),
    (lambda p: p.update(version=99), "version '99'"),
    (lambda p: p["mean"].__setitem__(0, float("nan")), "finite number"),
    (lambda p: p["mean"].append(1.0), "one per feature"),
    (lambda p: p["columns"][0].update(kind="eval"), "unknown kind"),
    (lambda p: p["columns"][-1].update(format="%Y\n__import__('os')"), "plain strftime format"),
    (lambda p: p["columns"][1].update(categories=["a"] * 3), "listed twice"),
    (lambda p: p.update(columns="all"), "1 to 500 columns"),
    (lambda p: p["columns"][0].update(name="x" * 5000), "at most 400 characters"),
])
def test_a_damaged_or_foreign_preparation_is_refused_with_what_is_wrong(change, message):
    prep = json.loads(json.dumps(split_dataset(read_csv(titanic_like(), "t.csv")).preparation))
    change(prep)
    with pytest.raises(tabular.PreparationError, match=message):
        tabular.check_preparation(prep)


def test_raw_text_rows_prepare_exactly_like_the_training_rows():
    """One transformation everywhere: the file's own lines, as text, give the split's numbers."""
    data = adult_like()
    ds = read_csv(data, "adult.csv")
    split = split_dataset(ds, seed=0)
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    rows = ds.table.rows[split.test_idx[:25]]
    x = tabular.prepare_rows(split.preparation, frame.iloc[rows])
    np.testing.assert_allclose(x, split.x_test[:25], rtol=1e-5, atol=2e-6)
    y = tabular.target_codes(split.preparation, frame["income"].iloc[rows])
    np.testing.assert_array_equal(y, split.y_test[:25])


def test_a_builtin_table_gets_the_same_kind_of_preparation():
    from core.datasets import load

    iris = load("iris")
    split = split_dataset(iris, seed=0)
    frame = {name: [f"{float(v)!r}" for v in iris.x[split.test_idx[:5], j]] for j, name in enumerate(iris.feature_names)}
    np.testing.assert_allclose(tabular.prepare_rows(split.preparation, frame), split.x_test[:5], rtol=1e-5,
                               atol=1e-5)


# ---- budgets and the reader ---------------------------------------------------------------------------------

def test_one_hot_width_counts_in_the_memory_budget_and_the_feature_cap():
    letters = [f"v{k}" for k in range(40)]
    rows = [[letters[(i * 7 + j) % 40] for j in range(30)] + [i % 2] for i in range(2000)]
    data = _csv([f"t{j}" for j in range(30)] + ["label"], rows)
    with pytest.raises(UploadError, match=r"2,000 rows x 630 features \(after one-hot encoding\) as float32 would "
                                          r"take 5 MB of memory; a 0.2 MB upload may use 2 MB"):
        read_csv(data, "wide.csv", "label", UploadLimits(min_memory=1024 * 1024))
    with pytest.raises(UploadError, match="630 features after one-hot encoding; the limit is 600"):
        read_csv(data, "wide.csv", "label", UploadLimits(max_features=600))
    assert read_csv(data, "wide.csv", "label", UploadLimits(max_features=600), top_k=5).input_shape == (180,)


def test_text_columns_past_the_level_cap_are_ignored_not_held():
    rows = [[f"user-{i:06d}", f"{i % 7}", i % 2] for i in range(300)]
    info = inspect_csv(_csv(["user", "x", "label"], rows), "u.csv", UploadLimits(max_levels=100))
    user = info.table.profile("user")
    assert user.kind == "identifier" and "more than 100 distinct values" in user.detail
    assert info.table.column("user").levels is None and not len(info.table.column("user").codes)
    with pytest.raises(UploadError, match="column 'user' cannot be a feature: it has more than 100 distinct"):
        read_csv(_csv(["user", "x", "label"], rows), "u.csv", "label", UploadLimits(max_levels=100),
                 roles={"user": "feature"})


def test_small_chunks_read_the_same_table(monkeypatch):
    """Kinds, dates, gaps and codes do not depend on where the reader's chunks fall (a chunk may be all gaps)."""
    data = titanic_like(300)
    whole = read_csv(data, "t.csv")
    monkeypatch.setattr(uploads, "_CHUNK_CELLS", 13 * 7)  # chunks of 7 rows
    chunked = read_csv(data, "t.csv")
    assert whole.feature_names == chunked.feature_names and whole.source == chunked.source
    np.testing.assert_array_equal(whole.x, chunked.x)
    gaps = _csv(["a", "when", "label"], [["NA" if i < 20 else str(i), "" if i < 20 else
                                          str(np.datetime64("2021-01-01") + i), i % 2] for i in range(60)])
    assert read_csv(gaps, "g.csv", "label").input_shape == (5,)


def test_summary_says_what_was_done_and_why():
    ds = read_csv(titanic_like(), "titanic.csv")
    summary = ds.table.summary
    assert summary[0].startswith("400 of 400 rows used, 8 feature column(s) make 14 model input(s)")
    text = " ".join(summary)
    for part in ("Target 'Survived': 2 classes (0, 1)", "Age ", "with the median", "Embarked 2",
                 "with the most frequent value", "Ignored: PassengerId (an identifier",
                 "Name (free text", "Boarded", "One-hot encoded", "Sex (2 values)"):
        assert part in text, part
    assert all(line.endswith(".") for line in summary)


def test_the_worker_stores_the_fitted_preparation_with_the_run(tmp_path, monkeypatch):
    """Each run's config.json gets the preparation its own split fitted (hold-out or a CV fold): plain data."""
    import core.worker as worker
    from core.jobs import TrainRequest, run_config
    from core.runs import RunStore
    from core.specs import default_preset_name, preset
    from core.training import LiveProgress, TrainConfig, TrainOutcome

    ds = read_csv(penguins_like(), "penguins.csv")
    store = RunStore(tmp_path)
    request = TrainRequest(ds, preset(default_preset_name(ds), ds), TrainConfig(epochs=1, seed=5))
    run_id = store.create_run(run_config(request))
    seen = []
    monkeypatch.setattr(worker, "train_run", lambda *a, **k: seen.append(k["split"]) or TrainOutcome("completed",
                                                                                                         "ok", {}))
    assert worker.execute_request(store, run_id, request, LiveProgress(1))[0] == "completed"
    stored = json.loads((store.root / run_id / "config.json").read_text())["preparation"]
    assert stored == json.loads(json.dumps(seen[0].preparation)) == split_dataset(ds, seed=5).preparation
    assert tabular.check_preparation(stored)["columns"][0]["name"] == "island"
