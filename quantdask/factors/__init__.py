"""quantdask.factors"""
