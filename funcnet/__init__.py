"""funcnet: pure-functional, JAX-style deep learning over pluggable array backends.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> fn.grad(lambda x: fnp.sum(x * x))(fnp.array([1.0, 2.0]))
array([2., 4.], dtype=float32)
"""

__version__ = "0.1.0"

from funcnet import backends, errors  # noqa: E402
from funcnet.backends import device_put, get_backend, set_backend, to_numpy, use_backend  # noqa: E402
from funcnet.config import config  # noqa: E402
from funcnet.ops.elementwise import stop_gradient  # noqa: E402
from funcnet.transforms.api import (ShapeDtypeStruct, eval_shape, grad, hessian, jacfwd,  # noqa: E402
                                    jacrev, jvp, linearize, make_graph, value_and_grad, vjp)
from funcnet.transforms.batching import vmap  # noqa: E402
from funcnet.transforms.jit import jit  # noqa: E402
from funcnet.transforms.custom import checkpoint, custom_jvp, custom_vjp, remat  # noqa: E402
from funcnet import lax, numpy, random, testing, tree  # noqa: E402

__all__ = ["backends", "errors", "config", "device_put", "get_backend", "set_backend",
           "to_numpy", "use_backend", "stop_gradient", "ShapeDtypeStruct", "eval_shape", "grad",
           "hessian", "jacfwd", "jacrev", "jvp", "linearize", "make_graph", "value_and_grad",
           "vjp", "lax", "numpy", "random", "testing", "tree", "checkpoint", "custom_jvp", "custom_vjp", "remat", "vmap", "jit"]
