"""The offline payment protocol: messages and the sans-I/O payer/payee exchange."""
