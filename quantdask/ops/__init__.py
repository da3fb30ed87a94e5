"""quantdask.ops"""
