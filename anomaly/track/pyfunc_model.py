"""MLflow "model from code": the scoring model that `anomaly train` logs.

`load_context` rebuilds the saved pipeline (network weights read weights-only); `predict` takes a
flight log's columns (one flight, rows in time order) and returns per-row `score`, `is_anomaly`
and `top_channel`, one row per input row, through the same pipeline stream as `anomaly score`.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FlightScorer(PythonModel):
    def load_context(self, context):
        from anomaly.detect.pipeline import Pipeline

        self.pipeline = Pipeline.load(context.artifacts["pipeline"])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        from anomaly.detect.scoring import score_frame

        return score_frame(self.pipeline, model_input)


mlflow.models.set_model(FlightScorer())
