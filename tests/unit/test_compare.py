"""Champion vs challenger on real fitted models behind an in-memory registry: verdicts, recorded
tags and artifacts, and the bad inputs (dangling alias, unknown alias, a champion trained on other
features or on a column the data lost, nothing trained)."""

from __future__ import annotations

import json

import pytest

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.evaluate.compare import compare_model
from mlops_gitops.report.render import compare_markdown, compare_text

from .eval_support import EvalRegistry, edit, example_project, load, train_into

IRIS = "iris-classifier"


@pytest.fixture
def root(tmp_path):
    return example_project(tmp_path / "project")


def spec_file(root, model=IRIS):
    return root / "specs" / "models" / f"{model}.yaml"


def compare(root, registry, model=IRIS, **kwargs):
    project = load(root)
    return compare_model(project, project.located("Model", model), registry=registry, **kwargs)


def worse(root):
    edit(spec_file(root), "class: sklearn.linear_model.LogisticRegression\n    params: {C: 1.0, "
         "max_iter: 500}", "class: sklearn.dummy.DummyClassifier\n    params: {}")


def test_no_champion_applies_value_thresholds_only(root):
    registry = EvalRegistry()
    number = train_into(registry, root, IRIS)
    result = compare(root, registry)
    assert result.blessed and result.champion is None and result.interval is None
    assert [c.status for c in result.verdict.checks] == ["pass", "pass", "skipped"]
    assert "alias 'prod' is not set" in result.champion_note
    tags = registry.versions[(IRIS, number)].tags
    assert tags["mlops.verdict"] == "blessed" and tags["mlops.verdict.champion"] == "none"
    assert tags["mlops.verdict.checks"] == "2/2 passed, 1 skipped"
    text = compare_text([result.to_dict()])
    assert "no champion: change thresholds are skipped, value thresholds still apply" in text


def test_worse_challenger_is_not_blessed_and_the_tags_say_why(root):
    registry = EvalRegistry()
    champion = train_into(registry, root, IRIS)
    registry.aliases[IRIS]["prod"] = champion
    worse(root)
    challenger = train_into(registry, root, IRIS)
    result = compare(root, registry)
    assert result.blessed is False and result.champion.version == champion
    assert result.same_rows is True
    assert {(c.metric, c.kind) for c in result.verdict.failed} == {
        ("accuracy", "min"), ("f1_macro", "min"), ("f1_macro", "change.absolute")}
    assert result.interval.reading == "worse"
    tags = registry.versions[(IRIS, challenger)].tags
    assert tags["mlops.verdict"] == "not_blessed"
    assert tags["mlops.verdict.champion"] == str(champion)
    assert tags["mlops.verdict.failed"] == ("accuracy min; f1_macro min; f1_macro "
                                            "change.absolute")
    assert tags["mlops.verdict.primary_delta"].startswith("f1_macro -")
    recorded = registry.artifacts[f"run-{IRIS}-{challenger}"]["compare.json"]
    assert recorded["verdict"] == "not blessed"
    assert recorded["challenger"]["confusion"]["labels"] == ["setosa", "versicolor",
                                                             "virginica"]
    markdown = compare_markdown([recorded])
    assert "❌ not blessed" in markdown and "| f1_macro | overall |" in markdown


def test_good_challenger_against_a_champion_is_blessed_with_an_interval(root):
    registry = EvalRegistry()
    champion = train_into(registry, root, IRIS)
    registry.aliases[IRIS]["prod"] = champion
    edit(spec_file(root), "C: 1.0", "C: 0.9")
    train_into(registry, root, IRIS)
    result = compare(root, registry)
    assert result.blessed
    [absolute] = [c for c in result.verdict.checks if c.kind == "change.absolute"]
    assert absolute.champion is not None and absolute.passed
    interval = result.interval
    assert interval.metric == "f1_macro" and interval.resamples == 1000
    assert interval.low <= interval.observed <= interval.high
    assert json.loads(json.dumps(result.to_dict()))["interval"]["reading"] == interval.reading


def test_challenger_that_is_the_champion(root):
    registry = EvalRegistry()
    number = train_into(registry, root, IRIS)
    registry.aliases[IRIS]["prod"] = number
    result = compare(root, registry)
    assert result.blessed and result.interval.low == result.interval.high == 0.0
    assert any("the challenger is the champion" in n for n in result.notes)


def test_regression_lower_is_better_change(root):
    registry = EvalRegistry()
    champion = train_into(registry, root, "diabetes-regressor")
    registry.aliases["diabetes-regressor"]["prod"] = champion
    edit(spec_file(root, "diabetes-regressor"), "features: [age, sex, bmi, bp, s1, s2, s3, s4, "
         "s5, s6]", "features: [age, sex, bmi]")
    train_into(registry, root, "diabetes-regressor")
    result = compare(root, registry, "diabetes-regressor")
    mae = [c for c in result.verdict.checks if c.metric == "mae" and c.kind == "change.relative"]
    assert mae[0].passed is False and mae[0].challenger > mae[0].champion
    assert result.challenger.residuals is not None and result.champion.residuals is not None
    assert result.challenger.residuals["edges"] == result.champion.residuals["edges"]
    assert any("different features" in n and "removed bp, s1" in n for n in result.notes)


def test_alias_pointing_at_a_deleted_version_is_an_error(root):
    registry = EvalRegistry()
    old = train_into(registry, root, IRIS)
    edit(spec_file(root), "C: 1.0", "C: 0.9")
    train_into(registry, root, IRIS)
    registry.aliases[IRIS]["prod"] = old
    registry.delete(IRIS, old)  # a store that keeps the alias dangling
    with pytest.raises(DiagnosticError) as caught:
        compare(root, registry)
    [problem] = caught.value.diagnostics
    assert problem.message == (f"alias 'prod' of {IRIS} points at version {old}, which no "
                               "longer exists")


def test_named_alias_that_is_not_set_is_an_error(root):
    registry = EvalRegistry()
    train_into(registry, root, IRIS)
    registry.aliases[IRIS]["staging"] = 1
    with pytest.raises(DiagnosticError, match="alias 'prod-eu' is not set") as caught:
        compare(root, registry, champion_alias="prod-eu")
    assert "staging" in caught.value.diagnostics[0].hint


def test_nothing_trained_says_train_first(root):
    with pytest.raises(DiagnosticError, match="train first") as caught:
        compare(root, EvalRegistry())
    assert caught.value.diagnostics[0].file.endswith("iris-classifier.yaml")


def test_champion_trained_on_a_column_the_data_lost_is_explained_not_blessed(root):
    """The champion used 'petal_area', which the current data no longer has: its change
    thresholds fail with the reason; value thresholds are still judged."""
    registry = EvalRegistry()
    data = root / "data" / "iris.csv"
    original = data.read_text()
    lines = original.splitlines()
    widened = [lines[0] + ",petal_area"] + [
        f"{row},{float(row.split(',')[2]) * float(row.split(',')[3]):.4g}" for row in lines[1:]]
    data.write_text("\n".join(widened) + "\n")
    dataset = root / "specs" / "datasets" / "iris.yaml"
    edit(dataset, "    species:", "    petal_area: {type: float, min: 0}\n    species:")
    edit(spec_file(root), "petal_width]", "petal_width, petal_area]")
    champion = train_into(registry, root, IRIS)
    registry.aliases[IRIS]["prod"] = champion
    data.write_text(original)
    edit(dataset, "    petal_area: {type: float, min: 0}\n", "")
    edit(spec_file(root), "petal_width, petal_area]", "petal_width]")
    train_into(registry, root, IRIS)
    result = compare(root, registry)
    assert result.blessed is False
    assert "petal_area" in result.champion.problem
    [change] = [c for c in result.verdict.checks if c.kind == "change.absolute"]
    assert change.passed is False and "champion not evaluated" in change.note
    assert [c.passed for c in result.verdict.checks if c.kind == "min"] == [True, True]
    assert result.same_rows is False  # the data changed: the split hash did too
    assert any("evaluated on the new test split" in n for n in result.notes)


def test_champion_without_lineage_uses_the_model_feature_names(root):
    registry = EvalRegistry()
    champion = train_into(registry, root, IRIS, lineage=False)
    registry.aliases[IRIS]["prod"] = champion
    edit(spec_file(root), "C: 1.0", "C: 0.9")
    train_into(registry, root, IRIS)
    result = compare(root, registry)
    assert result.champion.features == ("sepal_length", "sepal_width", "petal_length",
                                        "petal_width")
    assert any("no recorded lineage" in n for n in result.notes)
    assert result.blessed


def test_policy_slices_get_every_threshold(root):
    registry = EvalRegistry()
    train_into(registry, root, IRIS)
    policy = root / "policies" / "classification.yaml"
    edit(policy, "  gates:", "  slices: [species]\n  gates:")
    result = compare(root, registry)
    assert result.slice_keys == ("species=setosa", "species=versicolor", "species=virginica")
    assert len(result.verdict.checks) == 3 * 4
    assert {c.slice for c in result.verdict.checks} == {None, *result.slice_keys}


def test_stale_verdict_tags_are_removed(root):
    registry = EvalRegistry()
    number = train_into(registry, root, IRIS)
    registry.aliases[IRIS]["prod"] = number
    compare(root, registry)
    assert "mlops.verdict.primary_delta" in registry.versions[(IRIS, number)].tags
    del registry.aliases[IRIS]["prod"]
    compare(root, registry)
    tags = registry.versions[(IRIS, number)].tags
    assert "mlops.verdict.primary_delta" not in tags
    assert tags["mlops.verdict.champion"] == "none"


def test_no_record_leaves_the_version_alone(root):
    registry = EvalRegistry()
    number = train_into(registry, root, IRIS)
    compare(root, registry, record=False)
    assert "mlops.verdict" not in registry.versions[(IRIS, number)].tags
    assert "compare.json" not in registry.artifacts[f"run-{IRIS}-{number}"]
