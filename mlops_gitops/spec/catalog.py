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
