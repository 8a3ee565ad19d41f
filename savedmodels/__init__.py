"""The SavedModels shipped with videoflow-tf, installed as ``videoflow_tf.savedmodels``.

A package only so that the shipped models install with videoflow-tf as package data and
are found the same way in a checkout, an editable install and a wheel install
(`importlib.resources.files("videoflow_tf.savedmodels")`). It holds no code.
"""
