"""Wire encoding: deterministic CBOR (RFC 8949 section 4.2) and COSE_Sign1 (RFC 9052)."""
