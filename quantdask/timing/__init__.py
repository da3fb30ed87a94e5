"""quantdask.timing"""
