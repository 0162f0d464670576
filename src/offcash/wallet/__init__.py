"""Wallets: the owner's side of a secure element, and receive-only terminals."""
