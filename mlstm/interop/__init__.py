"""Bridges to other frameworks: :mod:`mlstm.interop.keras` and :mod:`mlstm.interop.torch`.

Each imports its framework only when one of its functions is called.
"""
