"""Training: turning a built network, a recipe and data into an accuracy.

``trainer`` (``jointnas.train``) trains and evaluates; ``data`` holds a dataset in memory as
uint8 or streams it (``streaming``: DataLoader workers), read by ``sources`` (built-ins,
``.npz``, image folders; ``fashion_mnist`` the Debian one), split by ``split`` and cached
decoded by ``cache``; ``augment`` crops, flips and RandAugments batches on the device;
``checkpoint`` resumes a killed training per epoch; ``bn`` recalibrates BatchNorm statistics;
``perf`` tunes the process for long CPU runs. Imports only spaces (the recipe, DropPath) and
the root helpers: no storage, no search.
"""
