"""Feature extractors shared by quality measurement and the fingerprint feature spaces."""
