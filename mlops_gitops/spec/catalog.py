"""What a spec may name: allow-listed scikit-learn classes and known metrics (plain strings, so
checking a spec never imports scikit-learn)."""

from __future__ import annotations

TRANSFORMERS = frozenset({
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.preprocessing.Normalizer",
    "sklearn.preprocessing.PolynomialFeatures",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.OrdinalEncoder",
    "sklearn.impute.SimpleImputer",
    "sklearn.decomposition.PCA",
    "sklearn.feature_selection.VarianceThreshold",
    "sklearn.feature_selection.SelectKBest",
})

CLASSIFIERS = frozenset({
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.RidgeClassifier",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.svm.SVC",
    "sklearn.svm.LinearSVC",
    "sklearn.dummy.DummyClassifier",
})

REGRESSORS = frozenset({
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.linear_model.SGDRegressor",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.neighbors.KNeighborsRegressor",
    "sklearn.svm.SVR",
    "sklearn.dummy.DummyRegressor",
})

ESTIMATORS = {"classification": CLASSIFIERS, "regression": REGRESSORS}

METRICS = {
    "classification": frozenset({
        "accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "precision_macro",
        "recall_macro", "recall", "precision", "f1", "log_loss", "roc_auc_ovr",
    }),
    "regression": frozenset({"r2", "mae", "mse", "rmse", "mape", "max_error"}),
}

# Whether a larger value of the metric is better; used as the default direction of thresholds.
HIGHER_IS_BETTER = {
    "log_loss": False, "mae": False, "mse": False, "rmse": False, "mape": False, "max_error": False,
}

ALL_METRICS = METRICS["classification"] | METRICS["regression"]

# The values a metric can take (None: unbounded); a threshold outside them can never pass.
METRIC_RANGE: dict[str, tuple[float | None, float | None]] = {
    **{name: (0.0, 1.0) for name in METRICS["classification"] if name != "log_loss"},
    "log_loss": (0.0, None), "r2": (None, 1.0), "mae": (0.0, None), "mse": (0.0, None),
    "rmse": (0.0, None), "mape": (0.0, None), "max_error": (0.0, None),
}


def higher_is_better(metric: str) -> bool:
    """The default direction of a metric: larger is better unless it is a loss or an error."""
    return HIGHER_IS_BETTER.get(metric, True)


def impossible_bound(metric: str, low: float | None, high: float | None) -> str | None:
    """Why ``low <= value <= high`` can never hold for this metric, or None."""
    floor, ceiling = METRIC_RANGE.get(metric, (None, None))
    if low is not None and ceiling is not None and low > ceiling:
        return f"min {low:g} is above the largest possible {metric} ({ceiling:g})"
    if high is not None and floor is not None and high < floor:
        return f"max {high:g} is below the smallest possible {metric} ({floor:g})"
    return None

# Types that fitted allow-listed classes hold besides scikit-learn's estimators (which skops
# trusts itself). A model artifact naming any other type is refused before it is loaded: the
# list comes from this catalog, never from the artifact.
SKOPS_TRUSTED_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    *(f"sklearn.metrics._dist_metrics.{name}Distance64"
      for name in ("Euclidean", "Manhattan", "Minkowski", "Chebyshev")),
    *(f"sklearn.feature_selection._univariate_selection.{name}"
      for name in ("f_classif", "f_regression", "chi2")),
    *(f"sklearn.feature_selection._mutual_info.{name}"
      for name in ("mutual_info_classif", "mutual_info_regression")),
})
