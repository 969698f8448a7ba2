"""A CPU stand-in for CuPy: the GPU path of tinylm, run without a GPU.

tinylm picks its array module from the arrays (``tinylm.backend.get_array_module``), so a
module that looks like ``cupy`` to it, holding arrays that behave like CuPy's, sends every
layer down the code path a real GPU would take. The ``fake_gpu`` fixture (tests/conftest.py)
puts this module where ``tinylm.backend`` keeps its ``cupy`` reference.

What makes it a useful stand-in is what it refuses, as CuPy does:

* ``numpy.asarray(a)`` of a device array raises TypeError (``__array__``), and so does any
  operation that mixes a device array with a host ``numpy.ndarray`` (a ufunc, ``where``,
  ``concatenate``, ...). Python and NumPy scalars mix freely, as on CuPy. Only the
  creation functions (``asarray``, ``array``, ``ascontiguousarray``) and indexing accept
  host arrays: they copy them to the device.
* NumPy-only functions are missing (``frompyfunc``), as are array methods CuPy lacks
  (``__index__``: a 0-d device array cannot index a list); ``Generator`` has no
  ``permutation``/``choice``/``shuffle``, and its ``bit_generator.state`` is a method
  returning a device pointer, not a dict.
* ``repeat`` with a device array of counts raises ValueError. Where CuPy's versions differ
  the fake is the oldest that pyproject's ``[gpu]`` extra allows (13.6): CuPy 14 accepts
  device counts (synchronising) and has ``put_along_axis``, 13.6 does neither.

Some operations are allowed but wait for the device and copy a result to the host: ``int``,
``float``, ``bool``, ``item``, ``tolist``, ``get``, ``asnumpy``, printing, boolean-mask
indexing (its result's size is data-dependent) and ``nonzero``/``flatnonzero``/``unique``/
``bincount`` (the same). Each is recorded in ``syncs`` with the tinylm line that asked, so
tests can hold a training step to a budget.

Every name exposed here, with its signature, is checked against a snapshot of the real
CuPy's API (``cupy_api.json``, written by ``make_snapshot.py``; tests/test_fake_cupy.py).
The numbers come from NumPy, so results match the host to the last bit except where CuPy
itself differs (random streams: the fake's generators are NumPy's Philox, not cuRAND).
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
import types

import numpy

__version__ = "14.2.0"  # the CuPy version whose API the snapshot holds
_HERE = os.path.dirname(os.path.abspath(__file__))


# -- host synchronisations ----------------------------------------------------------------

class SyncLog:
    """The device->host synchronisations so far: (kind, "file:line in function") pairs, the
    location being the first caller outside this package (the tinylm line that asked)."""

    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def record(self, kind: str) -> None:
        frame = sys._getframe(1)
        while frame is not None and os.path.dirname(
                os.path.abspath(frame.f_code.co_filename)) == _HERE:
            frame = frame.f_back
        where = "?" if frame is None else (
            f"{os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno} "
            f"in {frame.f_code.co_name}")
        self.events.append((kind, where))

    def clear(self) -> None:
        self.events.clear()

    def __len__(self) -> int:
        return len(self.events)

    def summary(self) -> str:
        """One line per distinct (kind, place), with its count: what a failing budget shows."""
        counts: dict = {}
        for event in self.events:
            counts[event] = counts.get(event, 0) + 1
        return "\n".join(f"{n:4d} x {kind:<22} {where}"
                         for (kind, where), n in sorted(counts.items(), key=lambda kv: -kv[1]))


syncs = SyncLog()


# -- moving between host and fake device ----------------------------------------------------

def _unsupported(value) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}: the fake device, like CuPy, does not "
                     "mix host (NumPy) arrays into device operations; move them with "
                     "cupy.asarray first.")


def _host(value):
    """Unwrap device arrays (recursively through lists, tuples and keyword dicts) for NumPy
    to compute on; a host ndarray is refused, as CuPy refuses it."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, numpy.ndarray):
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_host(v) for v in value)
    if isinstance(value, dict):
        return {k: _host(v) for k, v in value.items()}
    return value


def _copy_in(value):
    """Host data (NumPy arrays included) as NumPy, for the functions that copy it to the
    device."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_in(v) for v in value)
    return value


def _device(value):
    """Wrap NumPy results as device arrays (a NumPy scalar becomes a 0-d array, as CuPy's
    reductions return 0-d arrays)."""
    if isinstance(value, numpy.ndarray):
        return ndarray._of(value)
    if isinstance(value, numpy.generic):
        return ndarray._of(numpy.asarray(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_device(v) for v in value)
    return value


def _call_args(sig: inspect.Signature, args, kwargs):
    """Bind to CuPy's signature (a call CuPy refuses is refused here), then pass on what
    was given: leading positional parameters positionally, the rest by keyword; arguments
    left at their defaults are dropped so that NumPy's own defaults apply."""
    bound = sig.bind(*args, **kwargs)
    positional, keywords, in_order = [], {}, True
    for name, param in sig.parameters.items():
        if param.kind is param.VAR_POSITIONAL:
            positional.extend(bound.arguments.get(name, ()))
        elif param.kind is param.VAR_KEYWORD:
            keywords.update(bound.arguments.get(name, {}))
        elif name not in bound.arguments:
            in_order = False
        elif param.kind is not param.KEYWORD_ONLY and in_order:
            positional.append(bound.arguments[name])
        else:
            keywords[name] = bound.arguments[name]
    return positional, keywords


def _numpy_twin(func):
    """Decorate a stub whose signature is CuPy's: calls run NumPy's function of the same
    name on the unwrapped arrays and wrap the result."""
    sig = inspect.signature(func)
    host = getattr(numpy, func.__name__)

    @functools.wraps(func)
    def run(*args, **kwargs):
        positional, keywords = _call_args(sig, args, kwargs)
        return _device(host(*_host(positional), **_host(keywords)))
    return run


def _method_twin(func):
    """The same for an ndarray method (the stub's first parameter is ``self``)."""
    sig = inspect.signature(func)
    name = func.__name__

    @functools.wraps(func)
    def run(self, *args, **kwargs):
        positional, keywords = _call_args(sig, (self,) + args, kwargs)
        return _device(getattr(self._a, name)(*_host(positional[1:]), **_host(keywords)))
    return run


def _syncing(kind):
    """Record a host synchronisation of ``kind`` each time the decorated function runs."""
    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            syncs.record(kind)
            return func(*args, **kwargs)
        return run
    return decorate


# -- ufuncs ---------------------------------------------------------------------------------

class ufunc:
    """A NumPy ufunc on device arrays, with CuPy's methods (``at`` needs CuPy >= 12)."""

    def __init__(self, host, name: str | None = None):
        self._host = host
        self.__name__ = name or host.__name__
        self.nin, self.nout = host.nin, host.nout

    def __repr__(self):
        return f"<ufunc '{self.__name__}' (fake device)>"

    def __call__(self, *args, **kwargs):
        out = kwargs.get("out")
        result = self._host(*_host(args), **_host(kwargs))
        return out if isinstance(out, ndarray) else _device(result)

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise TypeError(f"{self.__name__}.at: a must be a cupy.ndarray, got {type(a)}.")
        args = (indices,) if b is None else (indices, b)
        self._host.at(a._a, *_host(args))

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        result = self._host.reduce(_host(array), axis=axis, dtype=dtype, out=_host(out),
                                   keepdims=keepdims)
        return out if isinstance(out, ndarray) else _device(result)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        result = self._host.accumulate(_host(array), axis=axis, dtype=dtype, out=_host(out))
        return out if isinstance(out, ndarray) else _device(result)

    def outer(self, A, B, **kwargs):
        return _device(self._host.outer(_host(A), _host(B), **_host(kwargs)))


UFUNCS = ("add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "power",
          "remainder", "negative", "positive", "absolute", "sign", "reciprocal", "exp",
          "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "square", "sin", "cos",
          "tan", "tanh", "arctan", "arctanh", "floor", "ceil", "rint", "trunc", "maximum",
          "minimum", "fmax", "fmin", "logaddexp", "equal", "not_equal", "less", "less_equal",
          "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
          "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "left_shift",
          "right_shift", "isfinite", "isnan", "isinf", "signbit", "copysign")
for _name in UFUNCS:
    globals()[_name] = ufunc(getattr(numpy, _name), _name)
abs = globals()["absolute"]  # noqa: A001 - CuPy's alias


# -- the array ------------------------------------------------------------------------------

_NO_IMPLICIT_COPY = ("Implicit conversion to a NumPy array is not allowed. Please use "
                     "`.get()` to construct a NumPy array explicitly.")


def _index(key):
    """An index with device arrays unwrapped; a boolean device mask is a synchronisation
    (CuPy counts its True entries on the host to size the result). Lists and host arrays
    are allowed: CuPy copies them to the device."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, ndarray):
        if key.dtype == numpy.bool_:
            syncs.record("boolean mask index")
        return key._a
    return key


class ndarray:
    """A device array: a NumPy array that only device operations may touch."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, shape, dtype=float):
        self._a = numpy.empty(shape, dtype=dtype)

    @classmethod
    def _of(cls, host_array):
        arr = object.__new__(cls)
        arr._a = host_array
        return arr

    # attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._of(self._a.T))
    real = property(lambda self: ndarray._of(self._a.real))
    imag = property(lambda self: ndarray._of(self._a.imag))

    # refusals
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_NO_IMPLICIT_COPY)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """numpy.exp(device array) runs the device ufunc (NEP 13), as on CuPy."""
        own = globals().get(ufunc.__name__)
        if not isinstance(own, globals()["ufunc"]):
            return NotImplemented
        return (own if method == "__call__" else getattr(own, method))(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        """numpy.f(device arrays) runs the device f (NEP 18) where there is one."""
        namespace = {"numpy": sys.modules[__name__], "numpy.linalg": linalg}.get(
            func.__module__)
        own = getattr(namespace, func.__name__, None) if namespace else None
        return NotImplemented if own is None else own(*args, **kwargs)

    # host synchronisations
    def __int__(self):
        syncs.record("int()")
        return int(self._a)

    def __float__(self):
        syncs.record("float()")
        return float(self._a)

    def __complex__(self):
        syncs.record("complex()")
        return complex(self._a)

    def __bool__(self):
        syncs.record("bool()")
        return bool(self._a)

    def __repr__(self):
        syncs.record("repr()")
        return repr(self._a)

    def __str__(self):
        syncs.record("str()")
        return str(self._a)

    def __format__(self, spec):
        syncs.record("format()")
        return format(self._a, spec)

    @_syncing("item()")
    def item(self):
        return self._a.item()

    @_syncing("tolist()")
    def tolist(self):
        return self._a.tolist()

    @_syncing("get()")
    def get(self, stream=None, order="C", out=None, blocking=True):
        return numpy.array(self._a, order=order)

    # containers
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_device(row) for row in self._a)

    def __getitem__(self, slices):
        return _device(self._a[_index(slices)])

    def __setitem__(self, slices, value):
        self._a[_index(slices)] = _copy_in(value)

    # methods: CuPy's signatures, NumPy's arithmetic
    @_method_twin
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True): ...

    def reshape(self, *shape, order="C", copy=None):
        shape = shape[0] if len(shape) == 1 else shape
        return ndarray._of(self._a.reshape(shape, order=order))

    def transpose(self, *axes):
        return ndarray._of(self._a.transpose(*axes))

    @_method_twin
    def swapaxes(self, axis1, axis2): ...

    @_method_twin
    def sum(self, axis=None, dtype=None, out=None, keepdims=False): ...

    @_method_twin
    def mean(self, axis=None, dtype=None, out=None, keepdims=False): ...

    @_method_twin
    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False): ...

    @_method_twin
    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False): ...

    @_method_twin
    def prod(self, axis=None, dtype=None, out=None, keepdims=None): ...

    @_method_twin
    def max(self, axis=None, out=None, keepdims=False): ...

    @_method_twin
    def min(self, axis=None, out=None, keepdims=False): ...

    @_method_twin
    def argmax(self, axis=None, out=None, dtype=None, keepdims=False): ...

    @_method_twin
    def argmin(self, axis=None, out=None, dtype=None, keepdims=False): ...

    @_method_twin
    def any(self, axis=None, out=None, keepdims=False): ...

    @_method_twin
    def all(self, axis=None, out=None, keepdims=False): ...

    @_method_twin
    def cumsum(self, axis=None, dtype=None, out=None): ...

    @_method_twin
    def copy(self, order="C"): ...

    @_method_twin
    def ravel(self, order="C"): ...

    @_method_twin
    def flatten(self, order="C"): ...

    @_method_twin
    def squeeze(self, axis=None): ...

    @_method_twin
    def fill(self, value): ...

    @_method_twin
    def clip(self, min=None, max=None, out=None): ...

    @_method_twin
    def round(self, decimals=0, out=None): ...

    @_method_twin
    def take(self, indices, axis=None, out=None): ...

    @_method_twin
    def argsort(self, axis=-1, kind=None): ...

    @_method_twin
    def view(self, dtype=None, type=None): ...

    def repeat(self, repeats, axis=None):
        if isinstance(repeats, ndarray):
            raise ValueError("cupy.ndaray cannot be specified as `repeats` argument.")
        return ndarray._of(self._a.repeat(repeats, axis))

    @_syncing("nonzero()")
    def nonzero(self):
        return _device(self._a.nonzero())


def _binary(name: str, reflected: bool = False):
    op = globals()[name]
    return (lambda self, other: op(other, self)) if reflected else (
        lambda self, other: op(self, other))


def _inplace(name: str):
    op = globals()[name]

    def apply(self, other):
        op(self, other, out=self)
        return self
    return apply


_OPERATORS = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
              "floordiv": "floor_divide", "mod": "remainder", "pow": "power",
              "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
              "lshift": "left_shift", "rshift": "right_shift"}
for _op, _name in _OPERATORS.items():
    setattr(ndarray, f"__{_op}__", _binary(_name))
    setattr(ndarray, f"__r{_op}__", _binary(_name, reflected=True))
    setattr(ndarray, f"__i{_op}__", _inplace(_name))
for _op, _name in {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
                   "gt": "greater", "ge": "greater_equal"}.items():
    setattr(ndarray, f"__{_op}__", _binary(_name))
for _op, _name in {"neg": "negative", "pos": "positive", "abs": "absolute",
                   "invert": "invert"}.items():
    setattr(ndarray, f"__{_op}__", (lambda op: lambda self: op(self))(globals()[_name]))
ndarray.__matmul__ = lambda self, other: matmul(self, other)
ndarray.__rmatmul__ = lambda self, other: matmul(other, self)
ndarray.dot = lambda self, b, out=None: dot(self, b, out)


# -- array creation: the only functions that take host data ---------------------------------

def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    if isinstance(a, ndarray) and (dtype is None or a.dtype == dtype):
        return a
    return ndarray._of(numpy.array(_copy_in(a), dtype=dtype, order=order or "K"))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    return ndarray._of(numpy.array(_copy_in(obj), dtype=dtype, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    return ndarray._of(numpy.ascontiguousarray(_copy_in(a), dtype=dtype))


@_syncing("asnumpy()")
def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    return numpy.array(_copy_in(a), order=order)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else numpy


@_numpy_twin
def zeros(shape, dtype=float, order="C"): ...


@_numpy_twin
def ones(shape, dtype=float, order="C"): ...


@_numpy_twin
def empty(shape, dtype=float, order="C"): ...


@_numpy_twin
def full(shape, fill_value, dtype=None, order="C"): ...


@_numpy_twin
def zeros_like(a, dtype=None, order="K", subok=None, shape=None): ...


@_numpy_twin
def ones_like(a, dtype=None, order="K", subok=None, shape=None): ...


@_numpy_twin
def empty_like(prototype, dtype=None, order="K", subok=None, shape=None): ...


@_numpy_twin
def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None): ...


@_numpy_twin
def arange(start, stop=None, step=1, dtype=None): ...


@_numpy_twin
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0): ...


@_numpy_twin
def eye(N, M=None, k=0, dtype=float, order="C"): ...


@_numpy_twin
def tril(m, k=0): ...


@_numpy_twin
def triu(m, k=0): ...


# -- manipulation, indexing, sorting --------------------------------------------------------

@_numpy_twin
def reshape(a, newshape, order="C"): ...


@_numpy_twin
def transpose(a, axes=None): ...


@_numpy_twin
def swapaxes(a, axis1, axis2): ...


@_numpy_twin
def expand_dims(a, axis): ...


@_numpy_twin
def squeeze(a, axis=None): ...


@_numpy_twin
def broadcast_to(array, shape): ...


@_numpy_twin
def concatenate(tup, axis=0, out=None, *, dtype=None, casting="same_kind"): ...


@_numpy_twin
def stack(tup, axis=0, out=None, *, dtype=None, casting="same_kind"): ...


@_numpy_twin
def split(ary, indices_or_sections, axis=0): ...


@_numpy_twin
def where(condition, x=None, y=None): ...


@_numpy_twin
def take(a, indices, axis=None, out=None): ...


@_numpy_twin
def take_along_axis(a, indices, axis): ...


@_numpy_twin
def searchsorted(a, v, side="left", sorter=None): ...


@_numpy_twin
def sort(a, axis=-1, kind=None): ...


@_numpy_twin
def argsort(a, axis=-1, kind=None): ...


def partition(a, kth, axis=-1):
    if not isinstance(kth, int):
        raise ValueError("kth must be an int, as in CuPy (a sequence of kth is not "
                         "supported).")
    return _device(numpy.partition(_host(a), kth, axis))


@_numpy_twin
def unravel_index(indices, dims, order="C"): ...


@_numpy_twin
def diff(a, n=1, axis=-1, prepend=None, append=None): ...


@_numpy_twin
def clip(a, a_min, a_max, out=None): ...


@_numpy_twin
def round(a, decimals=0, out=None): ...  # noqa: A001 - CuPy's name


def repeat(a, repeats, axis=None):
    return asarray(a).repeat(repeats, axis)


@_syncing("nonzero()")
@_numpy_twin
def nonzero(a): ...


@_syncing("flatnonzero()")
@_numpy_twin
def flatnonzero(a): ...


@_syncing("unique()")
@_numpy_twin
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
           equal_nan=True): ...


@_syncing("bincount()")
@_numpy_twin
def bincount(x, weights=None, minlength=None): ...


# -- reductions and products ----------------------------------------------------------------

@_numpy_twin
def sum(a, axis=None, dtype=None, out=None, keepdims=False): ...  # noqa: A001


@_numpy_twin
def mean(a, axis=None, dtype=None, out=None, keepdims=False): ...


@_numpy_twin
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False): ...


@_numpy_twin
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False): ...


@_numpy_twin
def prod(a, axis=None, dtype=None, out=None, keepdims=False): ...


@_numpy_twin
def cumsum(a, axis=None, dtype=None, out=None): ...


@_numpy_twin
def amax(a, axis=None, out=None, keepdims=False): ...


@_numpy_twin
def amin(a, axis=None, out=None, keepdims=False): ...


max = amax  # noqa: A001 - CuPy's aliases
min = amin  # noqa: A001


@_numpy_twin
def argmax(a, axis=None, dtype=None, out=None, keepdims=False): ...


@_numpy_twin
def argmin(a, axis=None, dtype=None, out=None, keepdims=False): ...


@_numpy_twin
def any(a, axis=None, out=None, keepdims=False): ...  # noqa: A001


@_numpy_twin
def all(a, axis=None, out=None, keepdims=False): ...  # noqa: A001


@_numpy_twin
def count_nonzero(a, axis=None): ...


@_numpy_twin
def dot(a, b, out=None): ...


@_numpy_twin
def vdot(a, b): ...


@_numpy_twin
def tensordot(a, b, axes=2): ...


@_numpy_twin
def outer(a, b, out=None): ...


@_numpy_twin
def einsum(*operands, **kwargs): ...


def matmul(*args, dtype=None, out=None):
    result = numpy.matmul(*_host(args), dtype=dtype, out=_host(out))
    return out if isinstance(out, ndarray) else _device(result)


# -- CuPy's numpy-like names that are NumPy's own objects -----------------------------------

for _name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
              "uint16", "uint32", "uint64", "bool_", "intp", "dtype", "integer", "floating",
              "number", "generic", "inf", "nan", "pi", "e", "newaxis", "finfo", "iinfo",
              "issubdtype", "result_type", "can_cast"):
    globals()[_name] = getattr(numpy, _name)


# -- submodules: random, linalg, cuda; and cupyx.scipy.special ------------------------------

class _BitGenerator:
    """cuRAND's bit generators stand in as NumPy's Philox: a different stream from CuPy's,
    with CuPy's interface (``state()`` is a method returning the device state's pointer)."""

    def __init__(self, seed=None, *, size=-1):
        if isinstance(seed, ndarray):
            seed = asnumpy(seed)
        seq = seed if isinstance(seed, numpy.random.SeedSequence) else \
            numpy.random.SeedSequence(seed)
        self._host = numpy.random.Generator(numpy.random.Philox(seq))

    def state(self):
        return id(self._host)

    def random_raw(self, size=None, output=True):
        values = self._host.integers(0, 2 ** 31, size=size, dtype=numpy.int32)
        return _device(values) if output else None


class XORWOW(_BitGenerator):
    pass


class Philox4x3210(_BitGenerator):
    pass


class Generator:
    """CuPy's ``Generator``: the distributions tinylm may use; no permutation or choice."""

    def __init__(self, bit_generator):
        self.bit_generator = bit_generator

    def _draw(self, method: str, *args, **kwargs):
        return _device(numpy.asarray(getattr(self.bit_generator._host, method)(*args, **kwargs)))

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._draw("random", size, dtype)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return self._draw("standard_normal", size, dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        return self._draw("uniform", low, high, size).astype(dtype)

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return self._draw("integers", low, high, size, dtype, endpoint)


def _default_rng(seed=None):
    return random.Generator(random.XORWOW(seed))


random = types.ModuleType(f"{__name__}.random", "cupy.random on the fake device")
random.Generator, random.XORWOW, random.Philox4x3210 = Generator, XORWOW, Philox4x3210
random.default_rng = _default_rng
_default_rng.__name__ = "default_rng"


def _norm(x, ord=None, axis=None, keepdims=False):
    return _device(numpy.linalg.norm(_host(x), ord, axis, keepdims))


linalg = types.ModuleType(f"{__name__}.linalg", "cupy.linalg on the fake device")
linalg.norm = _norm
_norm.__name__ = "norm"


class Device:
    """``cupy.cuda.Device``: device 0, whose ``synchronize`` waits for it (recorded)."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def synchronize(self):
        syncs.record("synchronize()")


cuda = types.ModuleType(f"{__name__}.cuda", "cupy.cuda on the fake device: one device")
cuda.Device = Device
cuda.get_device_id = lambda: 0
cuda.runtime = types.ModuleType(f"{__name__}.cuda.runtime")
cuda.runtime.getDeviceCount = lambda: 1
cuda.runtime.getDeviceProperties = lambda device: {"name": b"fake device (NumPy on the CPU)"}
cuda.runtime.deviceSynchronize = lambda: syncs.record("synchronize()")
del Generator, XORWOW, Philox4x3210, Device     # CuPy has them in its submodules only


def _erf(x, out=None, dtype=None):
    x = numpy.asarray(x)
    values = numpy.frompyfunc(math.erf, 1, 1)(x).astype(dtype or x.dtype)
    if out is not None:
        out[...] = values
        return out
    return values


_erf.nin, _erf.nout = 1, 1


def cupyx_modules() -> dict:
    """``cupyx``, ``cupyx.scipy`` and ``cupyx.scipy.special`` (erf) for ``sys.modules``."""
    special = types.ModuleType("cupyx.scipy.special", "cupyx.scipy.special on the fake device")
    special.erf = ufunc(_erf, "erf")
    scipy = types.ModuleType("cupyx.scipy")
    scipy.special = special
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = scipy
    return {"cupyx": cupyx, "cupyx.scipy": scipy, "cupyx.scipy.special": special}


del _name, _op
