"""Print what each library will run under the current environment, to check ../shared/avx2-env.sh took effect.

    source ../shared/avx2-env.sh && .venv/bin/python bench/check_isa_env.py

Prints, one per line: the CPU's own ISA (/proc/cpuinfo), Numba's target CPU, ISA level and AVX features
and its cache folder, the core type of every OpenBLAS threadpoolctl finds (SciPy's: the one our kernels
call; NumPy's: the matmul peak), PyTorch's ATen capability, oneDNN's ISA (from ONEDNN_VERBOSE), and
whether XLA accepts XLA_FLAGS (a flag it does not know aborts it) with its intra-op thread count.
"""
import os
import subprocess
import sys

from kernels.machine import blas_info, host_cpu, numba_target

cpu = host_cpu()
target = numba_target()
print(f"cpu          {cpu['model']} (family {cpu['family']}, model {cpu['model_id']}), hardware ISA {cpu['isa']}")
print(f"numba        target {target['cpu']}, ISA {target['isa']}, features {' '.join(target['features'])}, "
      f"set by env: {target['set_by_env']}, cache {target['cache_dir']}")
for b in blas_info():
    if b["api"] == "openblas":
        print(f"openblas     {b['library']}: {b['architecture']} ({b['version']})")
try:
    import torch

    print(f"torch        {torch.__version__} ATen capability {torch.backends.cpu.get_cpu_capability()}")
    code = "import torch; torch.nn.Conv2d(16, 32, 3)(torch.ones(4, 16, 32, 32))"  # big enough for oneDNN
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    isa = next((line for line in out.splitlines() if "cpu,isa:" in line), "no oneDNN line")
    print(f"onednn       {isa.strip()}")
except ImportError:
    print("torch        not installed")
code = ("import os, jax, jax.numpy as jnp; (jnp.ones((64, 64)) @ jnp.ones((64, 64))).block_until_ready(); "
        "print(jax.__version__, sum(open(f'/proc/self/task/{t}/comm').read().strip() == 'tf_XLAEigen' "
        "for t in os.listdir('/proc/self/task')))")
done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
if done.returncode == 0:
    version, pool = done.stdout.split()
    print(f"xla          jax {version} accepts XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; intra-op threads {pool}")
else:
    print(f"xla          refused: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
