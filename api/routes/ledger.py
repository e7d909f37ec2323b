"""Ledger reads: merchant balances, entries, statements; accounts and the trial balance."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["ledger"])
