"""Plotly figures, pandas tables and the plain-text report drawn from analysis results; no model calls."""
