"""Experiment tracking and registered model versions, on MLflow (a sqlite store by default).

``mlflow_setup`` points MLflow at the store; ``versions`` registers, aliases, resolves and downloads attributor
versions; ``gate`` decides which version becomes champion; ``artifacts`` is what a version's run holds (the
attributor folder and the report).
"""
