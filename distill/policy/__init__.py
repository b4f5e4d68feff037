"""Manipulation policy: scripted demonstrations in LIBERO (demos, experts), the LIBERO HDF5 reader (hdf5_io)."""
