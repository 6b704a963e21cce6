"""The web demo (``laformer-app``): restore a photo in the browser.

:mod:`laformer.app.service` holds everything the page does to a photo and does not import gradio, so it is
tested and reused without the optional ``app`` extra; :mod:`laformer.app.ui` builds the gradio page around it.
"""
