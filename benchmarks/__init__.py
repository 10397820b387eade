"""asyncdyn's benchmark harness: side-by-side workloads against a local server or a canned one.

``python -m benchmarks`` runs the workloads of :mod:`benchmarks.workloads` for every client
adapter of :mod:`benchmarks.peers`; ``python -m benchmarks.overhead`` measures client CPU per
operation against the canned server of :mod:`benchmarks.canned`.
"""
