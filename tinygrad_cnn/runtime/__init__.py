"""How the library runs on this machine: threads, data-parallel worker processes, allocator and GC settings.

Nothing here is needed to define or differentiate a model; each setting is opt-in.
"""
