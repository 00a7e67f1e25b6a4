"""Print one line naming the CUDA machine: GPU, memory, SMs, torch, CUDA, cuDNN, CPU."""

import os
import platform

import torch

p = torch.cuda.get_device_properties(0)
print(
    f"{torch.cuda.get_device_name()} ({p.total_memory / 2**30:.0f} GiB, "
    f"{p.multi_processor_count} SMs), torch {torch.__version__}, CUDA {torch.version.cuda}, "
    f"cuDNN {torch.backends.cudnn.version()}, {platform.processor() or platform.machine()}, "
    f"{os.cpu_count()} CPUs"
)
