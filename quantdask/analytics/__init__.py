"""quantdask.analytics"""
