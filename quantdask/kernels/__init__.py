"""quantdask.kernels"""
