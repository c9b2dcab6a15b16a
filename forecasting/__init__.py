"""wattshare forecasting: each household's LSTM forecast of its load and PV for the next 3 hours.

* :mod:`forecasting.data`: features, per-home scaling, the train/validation/test split, windows.
* :mod:`forecasting.model`: the LSTM (per home, or one shared with a home embedding).
* :mod:`forecasting.train`: training (``wattshare train-forecasters``) and ``evaluate-forecasters``.
* :mod:`forecasting.baselines`: persistence, seasonal persistence and the seasonal mean of recent days.
* :mod:`forecasting.metrics` / :mod:`forecasting.evaluate`: MAPE, WAPE, MAE, RMSE, skill; the target check.
* :mod:`forecasting.provider`: :class:`~forecasting.provider.LSTMForecast`, the env's forecast provider.
* :mod:`forecasting.checkpoint`: safe checkpoints; :mod:`forecasting.onnx_export`: one ONNX file per home.

See ``docs/forecasting.md``. Submodules import torch; ``import forecasting`` alone does not.
"""
