"""Trace banks: the portable file format (``format``) and recording one from a live model (``record``)."""

from ponder.bank.format import FORMAT, SUFFIX, VERSION, Bank, BankError, BankProblem, BankTask
from ponder.bank.record import RecordProgress, partial_path, record_bank

__all__ = ["FORMAT", "SUFFIX", "VERSION", "Bank", "BankError", "BankProblem", "BankTask", "RecordProgress",
           "partial_path", "record_bank"]
