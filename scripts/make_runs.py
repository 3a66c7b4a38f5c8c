"""Build mpg_cli/data/runs.yaml from the team's shared/reference/runs-public.yaml.

Usage: python scripts/make_runs.py ../shared/reference/runs-public.yaml > mpg_cli/data/runs.yaml

Keeps the runs that give a model shape, a layout and a measured throughput, and writes
each with what the source says plus the assumptions mpg makes where the source is silent.
Measured tokens/s per GPU is the published value, or the source file's 'derived' value
(computed from the published TFLOP/s with the source's own FLOP formula).
"""

from __future__ import annotations

import sys

import yaml

GROUPS = {
    "narayanan2021-table1": dict(
        gpu="a100-80gb", gpus_per_node=8, intra_node_gb_s=300, inter_node_gb_s=25,
        zero=0, recompute="full", sequence_parallel=False, grad_reduce_bytes=4,
        overlap_grad_reduce=False, tp_comm_overlap=False, flash_attention=False,
        model=dict(ffn_type="gelu", tied_embeddings=True, position_embedding="learned", linear_biases=True, norm="layernorm"),
        assumptions=["micro-batch and virtual stages not published: searched", "no distributed optimizer (2021)",
                     "no sequence parallelism (2021)",
                     "gradient all-reduce after the backward pass, not overlapped (Megatron-LM 2021)",
                     "no FlashAttention (published 2022)"],
    ),
    "korthikanti2022-table5": dict(
        gpu="a100-80gb", gpus_per_node=8, intra_node_gb_s=300, inter_node_gb_s=25,
        zero=0, recompute="selective", sequence_parallel=True, grad_reduce_bytes=4,
        overlap_grad_reduce=False, tp_comm_overlap=False, flash_attention=False,
        model=dict(ffn_type="gelu", tied_embeddings=True, position_embedding="learned", linear_biases=True, norm="layernorm"),
        assumptions=["virtual stages: 3 for 175B and 530B (paper), searched for 1T",
                     "no FlashAttention (the paper's Megatron-LM materialises the attention scores)"],
    ),
    "megatron-lm-readme-h100-2024": dict(
        gpu="h100-sxm", gpus_per_node=8, intra_node_gb_s=450, inter_node_gb_s=50,
        zero=1, recompute=None, sequence_parallel=True, grad_reduce_bytes=4,
        overlap_grad_reduce=True, tp_comm_overlap=True, flash_attention=True,
        model=dict(ffn_type="gelu", tied_embeddings=False, position_embedding="rope", linear_biases=False, norm="layernorm"),
        assumptions=["FFN 4h GeLU and MHA assumed (README gives neither)", "distributed optimizer (--overlap-param-gather implies it)",
                     "micro-batch, virtual stages and recompute not published: searched"],
    ),
}
FOUNDRY = dict(
    gpu="a100-80gb", gpus_per_node=8, intra_node_gb_s=300, inter_node_gb_s=25,
    zero=3, sequence_parallel=False, grad_reduce_bytes=2, overlap_grad_reduce=True, tp_comm_overlap=False, flash_attention=True,
    model=dict(ffn_type="gelu", tied_embeddings=True, position_embedding="alibi", linear_biases=False, norm="layernorm"),
    assumptions=["PyTorch FSDP FULL_SHARD = ZeRO-3, bf16 reduce (MP mode PURE)"],
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
    return dict(
        id=run["id"], group=group, source=run.get("source", ""),
        gpu=rules["gpu"], gpus=run["num_accelerators"], gpus_per_node=rules["gpus_per_node"],
        intra_node_gb_s=rules["intra_node_gb_s"], inter_node_gb_s=rules["inter_node_gb_s"],
        global_batch=run["global_batch_sequences"], model=model,
        layout=dict(
            tp=par.get("tp") or 1, pp=par.get("pp") or 1, dp=par.get("dp"), micro_batch=run.get("micro_batch_size"),
            virtual_stages=virtual, zero=rules["zero"], recompute=recompute,
            sequence_parallel=rules["sequence_parallel"] and (par.get("tp") or 1) > 1,
            grad_reduce_bytes=rules["grad_reduce_bytes"], flash_attention=rules["flash_attention"],
        ),
        framework=dict(overlap_grad_reduce=rules["overlap_grad_reduce"], tp_comm_overlap=rules["tp_comm_overlap"]),
        measured=dict(tokens_per_s_per_gpu=float(tps), tflops_per_gpu=rep.get("tflops_per_gpu"),
                      mfu=rep.get("mfu"), hfu=rep.get("hfu"), tflops_definition=rep.get("tflops_definition")),
        assumptions=list(rules["assumptions"]),
    )


def main() -> None:
    runs = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
    out = [c for c in (convert(r) for r in runs) if c]
    sys.stdout.write("# Generated by scripts/make_runs.py from shared/reference/runs-public.yaml; do not edit by hand.\n")
    sys.stdout.write(yaml.safe_dump(out, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
