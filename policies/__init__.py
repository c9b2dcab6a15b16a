"""wattshare: policies."""
