"""Operation and status codes of the DDict protocol. Pure Python.

A request header is ``(op, request_id, reply_address, *args)``; a reply
header is ``(request_id, status, payload)``; value blobs follow either.
"""
GET, PUT, CONTAINS, DELETE, POP, POPITEM, SETDEFAULT, FETCH_ADD, WAIT = range(9)
LEN, KEYS, ITEMS, CLEAR, CHECKPOINT, ROLLBACK, STATS, PERSIST, STOP = range(9, 18)
GET_DIRECT = 18  # one key; a large value is answered with its address in the manager (see cma)

# Requests that never free a stored blob (every other one may).
READ_ONLY = frozenset((GET, GET_DIRECT, CONTAINS, LEN, KEYS, ITEMS, STATS, PERSIST, WAIT))

OK, ERROR, FULL, NO_CHECKPOINT = range(4)
