"""quantdask.sweep"""
