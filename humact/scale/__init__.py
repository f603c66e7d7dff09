"""Beyond one process: data-parallel training (`ddp`, PyTorch DDP under torchrun) and corpus-scale batch
jobs on a Ray cluster (`ray_jobs`). Both use the engines as they are; humact only adds what keeps
its promises (the same results as one process, rank 0 alone writing, the batch rules of
`humact.batch`)."""
