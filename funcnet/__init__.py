"""funcnet: pure-functional, JAX-style deep learning over pluggable array backends.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> fn.grad(lambda x: fnp.sum(x * x))(fnp.array([1.0, 2.0]))
array([2., 4.], dtype=float32)
"""

__version__ = "0.1.0"

from funcnet import backends, errors
from funcnet.backends import device_put, get_backend, set_backend, to_numpy, use_backend
from funcnet.config import config
from funcnet.ops.elementwise import stop_gradient
from funcnet.transforms.api import (ShapeDtypeStruct, eval_shape, grad, hessian, jacfwd, jacrev,
                                    jvp, linearize, make_graph, value_and_grad, vjp)
from funcnet.transforms.batching import vmap
from funcnet.transforms.custom import checkpoint, custom_jvp, custom_vjp, remat
from funcnet.transforms.jit import jit

from funcnet import debug, lax, numpy, optim, random, testing, tree  # isort: skip  (use the above)
from funcnet import distributed  # isort: skip  (uses numpy, random and tree)
from funcnet import data, nn  # isort: skip  (use lax, random and tree)
from funcnet.debug import debug_nans  # isort: skip
from funcnet import checkpoint_io, export  # isort: skip  (entry points: they use the above)
from funcnet import training  # isort: skip  (uses nn, optim, data, checkpoint_io)

__all__ = [
    "backends", "errors", "config", "device_put", "get_backend", "set_backend", "to_numpy",
    "use_backend", "stop_gradient", "ShapeDtypeStruct", "eval_shape", "grad", "hessian",
    "jacfwd", "jacrev", "jvp", "linearize", "make_graph", "value_and_grad", "vjp", "vmap",
    "checkpoint", "custom_jvp", "custom_vjp", "remat", "jit", "lax", "numpy", "random",
    "testing", "tree", "debug", "debug_nans", "checkpoint_io", "export", "data", "optim", "nn",
    "training", "distributed",
]
