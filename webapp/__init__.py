"""The Gradio Space's parts (app.py is the entry point): settings, request files, text, handlers, layout,
and the one module that touches Gradio's private API (gradio_compat). Apart from `deepfake`, which never
imports Gradio."""
