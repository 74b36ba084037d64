"""Compilation settings shared by every compiled kernel.

Kernels allocate nothing: every array is made in Python and passed in. That lets them run
without Numba's reference counting (`_nrt=False`), whose atomic counter updates on every array
view otherwise cost a third of the run time and make two threads fight over the same counters.
"""

KERNEL = {"cache": True, "_nrt": False}
