"""Training: turning a built network, a recipe and data into an accuracy.

``trainer`` (``jointnas.train``) trains and evaluates; ``data`` loads datasets (``fashion_mnist``
the Debian one); ``checkpoint`` resumes a killed training per epoch; ``bn`` recalibrates
BatchNorm statistics; ``perf`` tunes the process for long CPU runs. Imports only spaces (the
recipe, DropPath) and the root helpers: no storage, no search.
"""
