"""wattshare: federated."""
