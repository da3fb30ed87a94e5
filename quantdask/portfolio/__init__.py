"""quantdask.portfolio"""
