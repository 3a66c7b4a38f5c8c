"""Collectives: bytes to seconds, latency, and how much of a collective hides behind compute."""

from __future__ import annotations

from .constants import (
    LINK_EFFICIENCY_INTER,
    LINK_EFFICIENCY_INTRA,
    NCCL_BASE_LATENCY_S,
    NCCL_HOP_LATENCY_NET_S,
    NCCL_HOP_LATENCY_NVLINK_S,
)
from .hardware import Hardware


def exposed(x: float, window: float, overlap: float) -> float:
    """The part of ``x`` seconds of communication left after overlapping it with ``window`` seconds of compute.

    At most a fraction ``overlap`` of the communication hides, and never more than ``overlap`` of the window:
    exposed = max(x·(1−o), x − o·window). With o → 1 and a long window it is free; with no window it is x.
    """
    if x <= 0.0:
        return 0.0
    return max(x * (1.0 - overlap), x - overlap * window)


def ring_latency(ranks: int, nodes: int) -> float:
    """Latency of one ring collective over ``ranks`` GPUs: a base plus (n−1) hops (NCCL tuning.cc ring model).

    Each of the n−1 ring steps waits for its slowest hop: a network hop when the ring spans nodes.
    """
    if ranks <= 1:
        return 0.0
    hop = NCCL_HOP_LATENCY_NET_S if nodes > 1 else NCCL_HOP_LATENCY_NVLINK_S
    return NCCL_BASE_LATENCY_S + (ranks - 1) * hop


def collective_time(bytes_: float, ranks: int, ranks_per_node: int, factor: float, hw: Hardware,
                    share_nics: bool = True, count: int = 1) -> float:
    """Time of one collective over ``ranks`` GPUs, ``ranks_per_node`` of them on each node.

    nccl-tests bus-bandwidth model (docs/formulas.md A4.0): factor·(n−1)/n·S/W, factor 2 for all-reduce,
    1 for reduce-scatter, all-gather and all-to-all. Across nodes the collective is hierarchical
    (scaling-book gpus.md, docs/formulas.md A4.6): T = max(intra-node part, inter-node part), where the
    inter-node part moves factor·(M−1)/M·S over the NICs of the group's GPUs on a node (each GPU
    owns 1/gpus_per_node of the node's NIC bandwidth; docs/modeling-notes.md 4). ``share_nics=False``
    charges each GPU's own NIC only: used where every GPU's traffic is distinct (tensor parallel across
    nodes, expert all-to-all), so the node's NICs cannot be pooled for one message (docs/modeling-notes.md 5).
    ``count``: the bytes go in that many separate collectives (FSDP units, DDP buckets), each paying the
    ring latency.
    """
    if ranks <= 1 or bytes_ <= 0:
        return 0.0
    g = max(1, min(ranks, ranks_per_node))
    nodes = -(-ranks // g)
    intra = factor * (ranks - 1) / ranks * bytes_ / (hw.intra_bytes_s * LINK_EFFICIENCY_INTRA) if g > 1 else 0.0
    if nodes == 1:
        return intra + count * ring_latency(ranks, 1)
    nics = g if share_nics else 1
    inter = factor * (nodes - 1) / nodes * bytes_ / (hw.inter_bytes_s * nics * LINK_EFFICIENCY_INTER)
    return max(intra, inter) + count * ring_latency(ranks, nodes)


def p2p_time(bytes_: float, same_node: bool, hw: Hardware) -> float:
    """One point-to-point transfer between pipeline neighbours (Narayanan 2021 §4.1).

    On an NVSwitch node a pair gets the GPU's full NVLink bandwidth; on a mesh (AMD Infinity Fabric,
    PCIe-less xGMI meshes) one link joins a pair, 1/(g−1) of the GPU's bandwidth. Across nodes: one NIC.
    """
    if bytes_ <= 0:
        return 0.0
    if same_node:
        bw = hw.intra_bytes_s * LINK_EFFICIENCY_INTRA
        if hw.intra_topology == "mesh" and hw.gpus_per_node > 2:
            bw /= hw.gpus_per_node - 1
        return bytes_ / bw + NCCL_BASE_LATENCY_S
    return bytes_ / (hw.inter_bytes_s * LINK_EFFICIENCY_INTER) + NCCL_BASE_LATENCY_S + NCCL_HOP_LATENCY_NET_S


def all_to_all_time(bytes_: float, ranks: int, ranks_per_node: int, hw: Hardware,
                    node_limit: int | None = None) -> float:
    """Expert-parallel all-to-all of ``bytes_`` per GPU over ``ranks`` GPUs (dispatch or combine).

    A GPU sends (n−1)/n of its tokens to other ranks; the share bound for other nodes leaves through
    that GPU's own NIC (each GPU's traffic is distinct: the node's NICs are not pooled), the rest over
    NVLink. With node-limited routing (DeepSeek-V3 §3.2: each token to at most M nodes) at most
    M−1 of the token's M node destinations are remote.
    """
    if ranks <= 1 or bytes_ <= 0:
        return 0.0
    g = max(1, min(ranks, ranks_per_node))
    nodes = -(-ranks // g)
    remote_nodes = nodes - 1
    if node_limit is not None:
        remote_nodes = min(remote_nodes, max(0, node_limit - 1))
    off_node = bytes_ * remote_nodes / nodes if nodes > 1 else 0.0
    on_node = bytes_ * (g - 1) / ranks if g > 1 else 0.0
    intra = on_node / (hw.intra_bytes_s * LINK_EFFICIENCY_INTRA)
    inter = off_node / (hw.inter_bytes_s * LINK_EFFICIENCY_INTER)
    return max(intra, inter) + ring_latency(min(ranks, g), 1) + (NCCL_HOP_LATENCY_NET_S if nodes > 1 else 0.0)
