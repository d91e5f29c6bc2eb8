"""tf.data pipelines, as the epoch checks read them: what their graph draws, and how.

A ``tf.data`` pipeline's random ops take their seeds when the pipeline is
built (``map`` traces its function at once): built without a global seed,
``tf.random.uniform`` inside a ``map`` gets seed 0, which TensorFlow replaces
with fresh entropy at every iteration, so no reseeding afterwards reaches
it. Built under ``tf.random.set_seed``, every iteration replays the same
random stream, while ``shuffle(reshuffle_each_iteration=True)`` still draws
a new order per iteration from a seed generator inside the dataset. And a
parallel ``map`` hands its random numbers to whichever element its threads
reach first; on a private thread pool of one thread it draws them in order.

:func:`graph` reads what a pipeline holds from its serialized graph;
:func:`one_thread` wraps it so that it iterates deterministically. Nothing
here imports TensorFlow: it is reached through ``sys.modules``, once the
user's pipeline exists.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from pitfalls._frameworks.base import is_a, moved, private

_RANDOM_OP = re.compile(
    r"^(Random(?!.*Dataset)|Stateful(?!PartitionedCall)|TruncatedNormal"
    r"|ParameterizedTruncatedNormal|Multinomial|RngReadAndSkip|RngSkip|NonDeterministicInts)"
)
"""Ops that draw from a random state: stateful random ops and tf.random.Generator's."""
_ORDER_DATASETS = ("RandomDataset", "DirectedInterleaveDataset", "SamplingDataset")
"""Datasets besides shuffle() that may pick another order (``sample_from_datasets``)."""
_PYTHON_OPS = ("PyFunc", "EagerPyFunc", "PyFuncStateless", "GeneratorDataset")
"""Ops that run Python code (``py_function``, ``from_generator``)."""


_GRAPH = private("tf.data.Dataset._as_serialized_graph")
_HF_REFS = private("datasets.Dataset._TF_DATASET_REFS")


def is_dataset(obj: Any) -> bool:
    """Is ``obj`` a ``tf.data.Dataset`` (TensorFlow already imported, never imported here)?"""
    return is_a(obj, "tensorflow", "data.Dataset")


@dataclass(frozen=True, kw_only=True)
class Graph:
    """What a pipeline's graph says about its order and its randomness."""

    random_ops: tuple[str, ...] = ()
    """Random ops in its functions (``RandomUniform`` in a ``map``), by op type."""
    shuffles: int = 0
    """Shuffle datasets in the pipeline."""
    reshuffles: bool = False
    """A shuffle draws a new order at every iteration (``reshuffle_each_iteration=True``)."""
    frozen: bool = False
    """A shuffle repeats its first order (``reshuffle_each_iteration=False``)."""
    cache_after_shuffle: bool = False
    """A ``cache()`` stores the order of a shuffle before it, and replays it."""
    drops_remainder: bool = False
    """A ``batch(..., drop_remainder=True)``."""
    python: bool = False
    """Python code runs in it (``from_generator``, ``py_function``): it may reorder too."""
    order_ops: tuple[str, ...] = ()
    """Ops that may draw an order other than ``shuffle()``: in its functions
    (``tf.random.shuffle``, an index shuffle in a ``scan``, as Hugging Face's
    ``to_tf_dataset(shuffle=True)``) or datasets (``sample_from_datasets``)."""


def same_order(graph: Graph | None) -> tuple[str, str | None, dict[str, str]]:
    """Why a pipeline with this graph gave two epochs in one order, as the order check's
    words name it (``order_shuffled``'s kinds in ``words.toml``): (kind, the hint's kind,
    fields). A graph that cannot be read has the generic words."""
    if graph is None:
        return "tfdata", None, {}
    if graph.cache_after_shuffle:
        return "tfdata_cache", "tfdata", {}
    if graph.frozen:
        return "tfdata_frozen", "tfdata", {}
    if not graph.shuffles and graph.order_ops:
        return "tfdata_seeded", "tfdata", {"ops": ", ".join(graph.order_ops)}
    return ("tfdata" if graph.shuffles else "tfdata_unshuffled"), "tfdata", {}


def _is_true(nodes: dict[str, Any], name: str) -> bool:
    """Is the input named ``name`` fed by a Const node holding True?"""
    node = nodes.get(name.lstrip("^").split(":")[0])
    if node is None or node.op != "Const":
        return False
    return list(node.attr["value"].tensor.bool_val)[:1] == [True]


def _reshuffles(shuffle: Any) -> bool:
    """Does a shuffle dataset draw a new order at every iteration (the default)?"""
    flag = shuffle.attr.get("reshuffle_each_iteration")
    return True if flag is None else bool(flag.b)


def graph(dataset: Any) -> Graph | None:
    """Read ``dataset``'s graph (about 1 ms), or None when TensorFlow cannot serialize it."""
    try:
        from tensorflow.core.framework import graph_pb2
        from tensorflow.python.data.ops.options import ExternalStatePolicy

        serialized = dataset._as_serialized_graph(external_state_policy=ExternalStatePolicy.IGNORE)
        graph_def = graph_pb2.GraphDef.FromString(serialized.numpy())
    except AttributeError as exc:  # the private API moved
        moved(_GRAPH, exc)
        return None
    except Exception:  # a pipeline TensorFlow cannot serialize (a py_function's state)
        return None
    nodes = {node.name: node for node in graph_def.node}
    inner = [node for function in graph_def.library.function for node in function.node_def]
    again = [_reshuffles(node) for node in graph_def.node if node.op.startswith("ShuffleDataset")]
    return Graph(
        order_ops=tuple(
            sorted(
                {node.op for node in inner if "Shuffle" in node.op}
                | {node.op for node in graph_def.node if node.op.startswith(_ORDER_DATASETS)}
            )
        ),
        python=any(node.op in _PYTHON_OPS for node in [*graph_def.node, *inner]),
        random_ops=tuple(sorted({node.op for node in inner if _RANDOM_OP.match(node.op)})),
        shuffles=len(again),
        reshuffles=any(again),
        frozen=not all(again),
        cache_after_shuffle=any(
            node.op.startswith("CacheDataset") and _upstream(nodes, node, "ShuffleDataset")
            for node in graph_def.node
        ),
        drops_remainder=any(
            node.op.startswith(("BatchDataset", "ParallelBatchDataset"))
            and len(node.input) >= 3
            and _is_true(nodes, node.input[-1])
            for node in graph_def.node
        ),
    )


def _upstream(nodes: dict[str, Any], node: Any, prefix: str) -> bool:
    """Is there an op starting with ``prefix`` upstream of ``node`` (its input datasets)?"""
    seen: set[str] = set()
    stack = [node.input[0]] if node.input else []
    while stack:
        name = stack.pop().lstrip("^").split(":")[0]
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        upstream = nodes[name]
        if upstream.op.startswith(prefix):
            return True
        if upstream.op.endswith("Dataset") or "Dataset" in upstream.op:
            stack.extend(upstream.input[:1])
    return False


def one_thread(dataset: Any) -> Any:
    """``dataset`` on a private thread pool of one thread: a parallel ``map`` then draws
    its random numbers in element order, as a sequential one does (same results)."""
    try:
        import tensorflow as tf

        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        return dataset.with_options(options)
    except Exception:  # an older TensorFlow or a dataset refusing options: as it is
        return dataset


_KEPT: list[Any] = []
"""tf.data pipelines made by Hugging Face's ``to_tf_dataset`` that the checks built: kept."""


def keep_if_from_hf(dataset: Any) -> None:
    """Keep ``dataset`` alive if Hugging Face's ``Dataset.to_tf_dataset`` made it.

    ``datasets`` registers a callback on each such pipeline that, once the
    pipeline is garbage, deletes the data of the Hugging Face dataset it was made
    from when that is the user's own (already in numpy format): a check that
    builds the pipeline and lets it go would destroy the user's dataset. Each
    kept pipeline holds only references to that dataset's data.
    """
    hf = sys.modules.get("datasets")
    cls = getattr(hf, "Dataset", None)
    if cls is None:
        return
    refs = getattr(cls, "_TF_DATASET_REFS", None)
    if refs is None:
        moved(_HF_REFS, AttributeError("_TF_DATASET_REFS"))
    made = any(ref() is dataset for ref in list(refs or ()))
    if made and not any(kept is dataset for kept in _KEPT):
        _KEPT.append(dataset)
