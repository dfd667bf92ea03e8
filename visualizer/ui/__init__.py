"""The Gradio page, one module per tab group, each building its components and wiring its events; only here is
gradio imported."""
