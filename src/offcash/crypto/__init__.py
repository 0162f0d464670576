"""Signature algorithms and the two-tier X.509 PKI."""
