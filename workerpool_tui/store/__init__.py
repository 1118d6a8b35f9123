"""The task stores: adapters behind the protocols ``workerpool_tui.core`` defines.

``memory`` and ``sqlite`` keep a single instance's tasks; ``postgres`` shares one
database between the instances of a cluster.
"""
