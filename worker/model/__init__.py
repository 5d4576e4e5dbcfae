"""The model runtime: repository and manifest, loading, tokenising, chunking, backends, precision choice,
label decisions. Torch (or another inference library) only: nothing here knows asyncio or Redis."""
