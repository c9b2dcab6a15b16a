"""wattshare federated: households share model weights, never data (FedAvg on Flower).

* :mod:`federated.strategy`: Flower's FedAvg (or FedAvgM, or FedAvg under central DP) behind a
  screen that leaves out bad or missing replies with a logged reason.
* :mod:`federated.forecasters`: the household ``ClientApp`` of the LSTM forecasters;
  :mod:`federated.server_app`: the ``ServerApp`` (``flwr run federated/flower_app ...``).
* :mod:`federated.local_grid`: the in-process path (a Flower ``Grid`` calling the ClientApp here).
* :mod:`federated.forecast_runs`: local-only / FedAvg / FedAvg + fine-tuning / central comparison;
  :mod:`federated.online`: FedAvg every 3 hours during a simulated period.
* :mod:`federated.policies`: FedAvg of per-household PPO policies every K updates.
* :mod:`federated.local_deployment`: a SuperLink and SuperNodes on this machine.

See ``docs/federated.md``. Importing ``federated`` alone imports neither torch nor Flower.
"""
