"""The offline payment protocol: messages and the sans-I/O payer/payee exchange.

``PayerSide`` and ``PayeeSide`` move bytes in and out of one exchange (request, payment,
receipt) and never touch a transport; ``parse_request`` / ``parse_payment`` /
``parse_receipt`` decode the messages strictly (``DecodeError`` names the field).
"""

from offcash.protocol.exchange import PayeeDevice, PayeeSide, PayerDevice, PayerSide, State
from offcash.protocol.messages import (
    Payment,
    PaymentRequest,
    Receipt,
    digest,
    parse_payment,
    parse_receipt,
    parse_request,
)

__all__ = [
    "PayeeDevice",
    "PayeeSide",
    "PayerDevice",
    "PayerSide",
    "Payment",
    "PaymentRequest",
    "Receipt",
    "State",
    "digest",
    "parse_payment",
    "parse_receipt",
    "parse_request",
]
