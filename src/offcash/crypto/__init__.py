"""Signature algorithms, the two-tier X.509 PKI and the verifier's trust store."""
