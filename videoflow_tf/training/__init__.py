"""Training a model and the files it leaves: the `train` command, its callbacks and
sample monitor, run folders (`run_dir`), and opening any trained model (`open_model`)."""
