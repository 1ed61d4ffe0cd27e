"""FER Studio core: loading, training, evaluation and prediction for FER2013.

Importing ``core`` is cheap and never imports streamlit; TensorFlow/Keras are
imported inside the functions that need them.
"""
