"""wattshare: train."""
