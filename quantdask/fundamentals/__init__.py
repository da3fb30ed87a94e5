"""quantdask.fundamentals"""
