"""The ``forecasting`` section of a run configuration: a forecaster's shape and training.

Kept apart from the model (torch) so that reading a configuration imports no deep-learning stack.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from energy_env.config import Int, StrictModel

MODEL_KINDS = ("per_home", "shared")


class ForecasterConfig(StrictModel):
    """Everything that fixes a forecaster's shape and training (the ``forecasting`` config section);
    saved in every checkpoint."""

    kind: Literal["per_home", "shared"] = "per_home"
    window: Int = Field(48, ge=1, description="Input intervals (48 = 24 h).")
    horizon: Int = Field(6, ge=1, description="Forecast intervals (6 = 3 h).")
    hidden_size: Int = Field(32, ge=1)
    embedding_size: Int = Field(8, ge=1, description="Shared model only: the home embedding.")
    learning_rate: float = Field(3e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: Int = Field(256, ge=1)
    max_epochs: Int = Field(30, ge=1, description="Early stopping may end sooner.")
    patience: Int = Field(4, ge=1, description="Epochs without a better validation loss before a home stops improving.")
    validation_days_per_month: Int = Field(3, ge=1)
    loss: Literal["l1", "mse"] = Field("l1", description="l1: the median forecast (what MAPE/WAPE reward); mse.")
    residual: bool = Field(False, description="Predict the change from the last interval instead of the value.")
    # The data set's measured (past) temperature and irradiance as inputs. On CityLearn 2022 its
    # effect is within seed noise (docs/forecasting.md, "What matters"); off is a one-flag change.
    weather: bool = True
    seed: Int = Field(0, ge=0)

    def to_dict(self) -> dict:
        """Plain types only, so a checkpoint stays loadable with ``weights_only=True``."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, d: dict) -> "ForecasterConfig":
        """The inverse of :meth:`to_dict`; unknown keys are an error (a checkpoint from elsewhere)."""
        return cls.model_validate(d)
