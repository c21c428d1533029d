"""The name of the prediction among a model's columns, and how columns are shown (no heavy
imports: ``status`` uses it)."""

PREDICTION = "__prediction__"


def column_label(name: str) -> str:
    return "(prediction)" if name == PREDICTION else name
