"""Trace banks: the portable file format (``format``, ``packed``), recording one from a live model (``record``)
and pooling recordings (``merge``)."""

from ponder.bank.format import FORMAT, SUFFIX, VERSION, Bank, BankError, BankProblem, BankTask
from ponder.bank.merge import merge_banks
from ponder.bank.record import RecordProgress, load_partial, partial_path, record_bank

__all__ = ["FORMAT", "SUFFIX", "VERSION", "Bank", "BankError", "BankProblem", "BankTask", "RecordProgress",
           "load_partial", "merge_banks", "partial_path", "record_bank"]
