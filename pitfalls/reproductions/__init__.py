"""The lessons: each pitfall reproduced, buggy and fixed, with identical signatures.

* :mod:`pitfalls.reproductions.generators`: pitfall 1, a batch generator that
  re-yields one numpy buffer.
"""
