"""wattshare: forecasting."""
