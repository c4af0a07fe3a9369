"""Keras Lab's logic: plain Python, testable without Streamlit.

TensorFlow is imported lazily inside functions so that pages which need no model stay fast.
The Keras backend is set here, once, before anything can import Keras.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter
