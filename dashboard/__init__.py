"""Reusable Streamlit pieces for FER Studio: data source, charts, image grids, caches.

Pages in ``pages/`` compose these; nothing here runs at import time.
"""
