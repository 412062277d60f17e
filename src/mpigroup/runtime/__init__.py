"""Runtime internals: head services, node agents, spawn, shims, protocol."""
