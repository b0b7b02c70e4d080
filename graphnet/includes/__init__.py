"""C declarations shared by the Cython modules (see linux.pxd, platform.pxd)."""
