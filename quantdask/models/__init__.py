"""quantdask.models"""
