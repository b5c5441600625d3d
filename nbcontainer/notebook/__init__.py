"""The notebook skin: magics, rich displays, widgets and progress over ``nbcontainer.api``.

Nothing else in the package imports this one; ``%load_ext nbcontainer`` registers the magics.
"""
