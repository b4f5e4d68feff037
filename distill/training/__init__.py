"""Training infrastructure shared by the distillation and policy trainers.

`checkpoint` (atomic safetensors + JSON checkpoints, RNG capture), `distributed` (torchrun /
DDP set-up on gloo or NCCL), `sampler` (a step-indexed, resumable batch order) and `trainer`
(the loop: AdamW, warm-up + cosine, clipping, bf16 autocast on GPU, tqdm, TensorBoard, resume).
"""
