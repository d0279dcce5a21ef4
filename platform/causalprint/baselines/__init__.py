"""Attribution baselines from the literature behind one interface (docs/method.md §7), to compare the causal
fingerprint against: ``yu2019``, ``frank2020``, ``dire``, ``aeroblade``, ``univfd``.

Each reads columns of the extraction output (``{"image.rgb": [N, D], ...}``), and has ``fit``,
``predict_proba``, ``predict``, ``known_score`` (open set), ``save_pretrained``/``from_pretrained``::

    from causalprint.baselines import create_baseline, load_baseline

    model = create_baseline("frank2020", seed=1).fit(train_columns, y_train, num_classes=K)
    probs = model.predict_proba(test_columns)
    model.save_pretrained("out/frank2020")
    same = load_baseline("out/frank2020")
"""

from causalprint.baselines.base import COLUMN_DOCS, Baseline, BaselineOptions
from causalprint.baselines.registry import BASELINES, create_baseline, load_baseline

__all__ = ["BASELINES", "COLUMN_DOCS", "Baseline", "BaselineOptions", "create_baseline", "load_baseline"]
