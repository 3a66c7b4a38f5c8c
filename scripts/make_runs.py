"""Build mpg_cli/data/runs.yaml from the team's shared/reference/runs-public.yaml and runs-public-2.yaml.

Usage: python scripts/make_runs.py ../shared/reference/runs-public.yaml ../shared/reference/runs-public-2.yaml \
           > mpg_cli/data/runs.yaml

Keeps the runs that give a model shape, a layout and a measured throughput, and writes
each with what the source says plus the assumptions mpg makes where the source is silent.
Measured tokens/s per GPU is the published value, or the source file's 'derived' value
(computed from the published TFLOP/s with the source's own FLOP formula).
"""

from __future__ import annotations

import copy
import sys

import yaml

GROUPS = {
    "narayanan2021-table1": dict(
        gpu="a100-80gb", gpus_per_node=8, intra_node_gb_s=300, inter_node_gb_s=25,
        zero=0, recompute="full", sequence_parallel=False, grad_reduce_bytes=4,
        overlap_grad_reduce=False, tp_comm_overlap=False, flash_attention=False,
        model=dict(ffn_type="gelu", tied_embeddings=True, position_embedding="learned", linear_biases=True, norm="layernorm",
                   dropout=True),
        search_space=dict(zero=0, recompute="full", sequence_parallel=False),
        assumptions=["micro-batch and virtual stages not published: searched", "no distributed optimizer (2021)",
                     "no sequence parallelism (2021)",
                     "gradient all-reduce after the backward pass, not overlapped (Megatron-LM 2021)",
                     "no FlashAttention (published 2022)"],
    ),
    "korthikanti2022-table5": dict(
        gpu="a100-80gb", gpus_per_node=8, intra_node_gb_s=300, inter_node_gb_s=25,
        zero=0, recompute="selective", sequence_parallel=True, grad_reduce_bytes=4,
        overlap_grad_reduce=False, tp_comm_overlap=False, flash_attention=False,
        model=dict(ffn_type="gelu", tied_embeddings=True, position_embedding="learned", linear_biases=True, norm="layernorm",
                   dropout=True),
        search_space=dict(zero=0, recompute="selective"),
        assumptions=["virtual stages: 3 for 175B and 530B (paper), searched for 1T",
                     "no FlashAttention (the paper's Megatron-LM materialises the attention scores)"],
    ),
    "megatron-lm-readme-h100-2024": dict(
        gpu="h100-sxm", gpus_per_node=8, intra_node_gb_s=450, inter_node_gb_s=50,
        zero=1, recompute=None, sequence_parallel=True, grad_reduce_bytes=4,
        overlap_grad_reduce=True, tp_comm_overlap=True, flash_attention=True,
        model=dict(ffn_type="gelu", tied_embeddings=False, position_embedding="rope", linear_biases=False, norm="layernorm",
                   dropout=True),
        search_space=dict(zero=[0, 1]),
        assumptions=["FFN 4h GeLU and MHA assumed (README gives neither)", "distributed optimizer (--overlap-param-gather implies it)",
                     "micro-batch, virtual stages and recompute not published: searched"],
    ),
}
FOUNDRY = dict(
    gpu="a100-80gb", gpus_per_node=8, intra_node_gb_s=300, inter_node_gb_s=25,
    zero=3, sequence_parallel=False, grad_reduce_bytes=4, overlap_grad_reduce=True, tp_comm_overlap=False, flash_attention=True,
    model=dict(ffn_type="gelu", tied_embeddings=True, position_embedding="alibi", linear_biases=False, norm="layernorm"),
    attention_kernel="fa2",
    search_space=dict(tp=1, pp=1, cp=1, zero=3, recompute=["none", "full"]),
    assumptions=["PyTorch FSDP FULL_SHARD = ZeRO-3 (sharded_impl fsdp)",
                 "gradients reduced in fp32: Composer's default FSDP mixed precision (param bf16, reduce fp32)",
                 "FlashAttention-2 (the flash-attn package llm-foundry uses)"],
)


def convert(run: dict) -> dict | None:
    group = run.get("group", "")
    if group.startswith("llm-foundry-benchmarks: A100 80GB"):
        rules = FOUNDRY
    elif group in GROUPS:
        rules = GROUPS[group]
    else:
        return None
    par = run.get("parallelism")
    if not par or not isinstance(run.get("num_accelerators"), int):
        return None
    rep, der = run.get("reported") or {}, run.get("derived") or {}
    tps = rep.get("tokens_per_sec_per_gpu") or der.get("tokens_per_sec_per_gpu")
    if not tps:
        return None
    h = run["hidden_size"]
    model = dict(
        name=run["id"], layers=run["layers"], hidden_size=h, heads=run["attention_heads"],
        kv_heads=run.get("kv_heads") or run["attention_heads"], ffn_hidden_size=run.get("ffn_size") or 4 * h,
        vocab_size=run["vocab_size"], seq_length=run["seq_len"], **rules["model"],
    )
    recompute = rules.get("recompute", "none")
    rc_text = str(run.get("activation_recompute") or "")
    if rules is FOUNDRY:
        recompute = "full" if "full" in rc_text else "none"
    virtual = None
    if group == "korthikanti2022-table5" and run["layers"] in (96, 105):
        virtual = 3
    if group == "korthikanti2022-table5" and par.get("pp") == 1:
        virtual = 1
    family = "llm-foundry-a100" if rules is FOUNDRY else group
    return dict(
        id=run["id"], group=group, family=family, precision="bf16", source=run.get("source", ""),
        gpu=rules["gpu"], gpus=run["num_accelerators"], gpus_per_node=rules["gpus_per_node"],
        intra_node_gb_s=rules["intra_node_gb_s"], inter_node_gb_s=rules["inter_node_gb_s"],
        global_batch=run["global_batch_sequences"], model=model,
        layout=dict(
            tp=par.get("tp") or 1, pp=par.get("pp") or 1, dp=par.get("dp"), micro_batch=run.get("micro_batch_size"),
            virtual_stages=virtual, zero=rules["zero"], recompute=recompute,
            sequence_parallel=rules["sequence_parallel"] and (par.get("tp") or 1) > 1,
            grad_reduce_bytes=rules["grad_reduce_bytes"], flash_attention=rules["flash_attention"],
        ),
        framework=dict(overlap_grad_reduce=rules["overlap_grad_reduce"], tp_comm_overlap=rules["tp_comm_overlap"],
                       sharded_impl="fsdp", attention_kernel=rules.get("attention_kernel", "auto")),
        search_space=copy.deepcopy(rules["search_space"]),
        measured=dict(tokens_per_s_per_gpu=float(tps), tflops_per_gpu=rep.get("tflops_per_gpu"),
                      mfu=rep.get("mfu"), hfu=rep.get("hfu"), tflops_definition=rep.get("tflops_definition")),
        assumptions=list(rules["assumptions"]),
    )


# search_space: what the source's framework can do, for 'mpg fit' on the same GPUs and batch (validation's
# layout check): Megatron-LM 2021 had no ZeRO and only full recompute, 2022 added selective recompute; llm-foundry
# (Composer) trains with FSDP only, with full activation checkpointing or none; Megatron-LM 2024 (its README
# table) had the distributed optimizer (zero 1) or none, no ZeRO-2/3 (Megatron-FSDP came in 2025); Megatron-Core
# 2025-26 (Megatron-Bridge) can do everything mpg searches. A list is a set of choices.
# runs-public-2.yaml: benchmark points already in mpg's input shape (Megatron-Bridge pages, llm-foundry H100 FP8).
# The cluster keys there name mpg presets with the same numbers (h100-ib is dgx-h100's 8x 400 Gb/s NDR).
CLUSTERS_2 = {"h100-ib": "dgx-h100", "dgx-b200": "dgx-b200", "dgx-b300": "dgx-b300", "gb200-nvl72": "gb200-nvl72",
              "gb300-nvl72": "gb300-nvl72"}
MBRIDGE = dict(
    overlap_grad_reduce=True, tp_comm_overlap=True, sharded_impl="fsdp", grad_reduce_bytes=2, flash_attention=True,
    search_space={},
    assumptions=["Megatron-Core: distributed optimizer (zero 1) or Megatron-FSDP (zero 3), overlapped grad reduce and "
                 "param gather, TP comm overlap (recipe defaults)",
                 "gradients reduced in bf16 (Megatron-Bridge performance recipes)",
                 "sequence parallelism with tp > 1; cuDNN/FlashAttention fused attention"],
)
FOUNDRY_2 = dict(
    overlap_grad_reduce=True, tp_comm_overlap=False, sharded_impl="fsdp", grad_reduce_bytes=4, flash_attention=True,
    attention_kernel="fa2", search_space=dict(tp=1, pp=1, cp=1, zero=3, recompute=["none", "full"]),
    assumptions=["PyTorch FSDP FULL_SHARD = ZeRO-3 (sharded_impl fsdp)", "FlashAttention-2 (flash-attn)",
                 "gradients reduced in fp32: Composer's default FSDP mixed precision (param bf16, reduce fp32)",
                 "Transformer Engine FP8 GEMMs (amp_fp8)"],
)


def mbridge_family(run_id: str) -> str:
    """A Megatron-Bridge benchmark family is one model's table across releases and GPUs."""
    for key in ("deepseek-v3", "gpt-oss", "kimi-k2", "llama3.1-405b", "llama3-70b", "llama3-8b", "qwen3-235b", "qwen3-30b"):
        if key in run_id:
            return f"megatron-bridge-{key}"
    raise SystemExit(f"unknown Megatron-Bridge family: {run_id}")


MTP_NOTE = "26.x DeepSeek-V3 runs include 1 MTP layer"  # runs-public-2.yaml notes (the 25.11 rows say w/o MTP)


def convert2(run: dict) -> dict:
    rid = run["id"]
    foundry = rid.startswith("llmfoundry")
    rules = FOUNDRY_2 if foundry else MBRIDGE
    lay = dict(run["layout"])
    notes = str(run.get("notes", ""))
    unmodelled = []
    if "CPU offload" in notes:
        unmodelled.append("cpu_offload")
    cluster = CLUSTERS_2[run["cluster"]]
    model = dict(run["model"])
    if MTP_NOTE in notes and rid.startswith("mbridge-26."):  # the source's own note: 26.x rows train one MTP module
        model["mtp_layers"] = 1
    tp = lay.get("tp", 1)
    return dict(
        id=rid, group="llm-foundry-h100-fp8" if foundry else "megatron-bridge-performance",
        family="llm-foundry-h100-fp8" if foundry else mbridge_family(rid), precision=run.get("precision", "bf16"),
        source=run.get("source", ""), cluster=cluster, gpus=run["gpus"], global_batch=lay["global_batch"], model=model,
        layout=dict(tp=tp, pp=lay.get("pp", 1), dp=None, ep=lay.get("ep", 1), cp=lay.get("cp", 1),
                    micro_batch=lay.get("micro_batch"), virtual_stages=lay.get("virtual_stages", 1),
                    zero=lay.get("zero", 1), recompute=lay.get("recompute", "none"), sequence_parallel=tp > 1,
                    grad_reduce_bytes=rules["grad_reduce_bytes"], flash_attention=rules["flash_attention"]),
        framework=dict(overlap_grad_reduce=rules["overlap_grad_reduce"], tp_comm_overlap=rules["tp_comm_overlap"],
                       sharded_impl=rules["sharded_impl"], attention_kernel=rules.get("attention_kernel", "auto")),
        measured=dict(tokens_per_s_per_gpu=float(run["expect_tokens_per_s_per_gpu"]),
                      model_tflops_per_gpu=run.get("published_model_tflops_per_gpu")),
        unmodelled=unmodelled,
        search_space=copy.deepcopy(rules["search_space"]),
        notes=notes,
        assumptions=list(rules["assumptions"]),
    )


def main() -> None:
    first = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
    out = [c for c in (convert(r) for r in first) if c]
    if len(sys.argv) > 2:
        second = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
        out += [convert2(r) for r in second["runs"]]
    sys.stdout.write("# Generated by scripts/make_runs.py from shared/reference/runs-public.yaml and runs-public-2.yaml;"
                     " do not edit by hand.\n")
    sys.stdout.write(yaml.safe_dump(out, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
